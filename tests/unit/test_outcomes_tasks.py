"""`tabrepro outcomes` judges binary models only: a regression or multiclass contract is exit 2 with a message
naming the task, before any label, prediction, reference or output is touched."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tabrepro.cli import main
from tabrepro.config.params import load_params
from tests.conftest import REPO


@pytest.mark.parametrize(("data", "task"), [("islr_wage", "regression"), ("penguins", "multiclass")])
def test_a_non_binary_contract_is_refused_before_any_work(
    data: str, task: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    params = load_params(REPO / "params.yaml")
    params["data"] = yaml.safe_load((REPO / "conf" / "contracts" / f"{data}.yaml").read_text(encoding="utf-8"))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    report = tmp_path / "out" / "outcomes.json"
    argv = ["outcomes", "--labels", str(tmp_path / "absent.csv"), "--predictions", str(tmp_path / "absent")]
    argv += ["--params", str(tmp_path / "params.yaml"), "--report", str(report)]
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2
    assert f"outcomes: task {task} is not supported" in caplog.text
    assert "absent" not in caplog.text  # refused before the (missing) labels and predictions were looked for
    assert not (tmp_path / "out").exists()
