"""The contract is a file dependency, not params (issue 21 item 8): `params.yaml` names it, an edit of it marks
the stages that read it, another data set is still `-S data=<name>`, and one `dvc exp show` compares them."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import REPO, dvc, env

pytestmark = pytest.mark.e2e

CONTRACT = "conf/contracts/telco_churn.yaml"
READERS = {"prepare", "featurize", "evaluate", "package"}  # the stages whose deps list ${data.contract}
# docs/experiments.md, "Comparing data sets and tasks": the one command (its --keep pattern, verbatim)
KEEP = (
    r"^(Experiment|rev|data\.(name|task)|model\.name|(reports/metrics\.json:)?"
    r"(model|roc_auc|log_loss|accuracy|rmse|mae|r2|gate\.verdict))$"
)


def _status(repo: Path) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-m", "dvc", "status", "--json"], cwd=repo, env=env(), capture_output=True, text=True
    )
    return set(json.loads(done.stdout))


def test_the_contract_file_marks_its_readers_and_exp_show_compares_data_sets(workspace: Path) -> None:
    params = yaml.safe_load((workspace / "params.yaml").read_text(encoding="utf-8"))
    assert sorted(params["data"]) == ["contract", "name", "source", "task"]
    assert _status(workspace) == set()

    original = (workspace / CONTRACT).read_bytes()
    contract = yaml.safe_load(original)
    contract["segments"] = ["Contract"]
    (workspace / CONTRACT).write_text(yaml.safe_dump(contract, sort_keys=False), encoding="utf-8")
    assert _status(workspace) == READERS
    (workspace / CONTRACT).write_bytes(original)
    assert _status(workspace) == set()

    dvc(workspace, "exp", "run", "-S", "data=titanic")
    shown = dvc(workspace, "exp", "show", "--no-pager", "--csv", "--drop", ".*", "--keep", KEEP).stdout
    rows = [
        {k.removeprefix("reports/metrics.json:"): v for k, v in r.items()} for r in csv.DictReader(io.StringIO(shown))
    ]
    assert {"data.name", "data.task", "model", "roc_auc", "gate.verdict"} <= set(rows[0]), list(rows[0])
    assert {r["gate.verdict"] for r in rows} == {"pass"}, rows  # a word, not a boolean dvc would show as -1/1
    assert len(rows[0]) <= 13, list(rows[0])
    assert f"--keep '{KEEP}'" in (REPO / "docs/experiments.md").read_text(encoding="utf-8")  # the documented one
    assert {(r["data.name"], r["data.task"]) for r in rows} >= {("telco_churn", "binary"), ("titanic", "binary")}
