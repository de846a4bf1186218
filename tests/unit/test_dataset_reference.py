"""params.yaml names the data set's contract file; load_params reads the contract from it (config.dataset)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tabrepro.config.params import load_params
from tabrepro.contract.spec import load_contract
from tabrepro.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "conf", tmp_path / "conf")
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    return tmp_path


def _edit(path: Path, edit) -> None:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(raw)
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")


def test_params_hold_a_reference_and_load_params_gives_the_contract(repo: Path):
    committed = yaml.safe_load((repo / "params.yaml").read_text(encoding="utf-8"))["data"]
    assert committed == {
        "name": "telco_churn",
        "task": "binary",
        "source": "data/raw/telco_customer_churn.csv",
        "contract": "conf/contracts/telco_churn.yaml",
    }
    contract = load_contract(load_params(repo / "params.yaml")["data"])
    assert contract.name == "telco_churn" and contract.target.positive == "Yes" and "tenure" in contract.features


def test_an_edit_of_the_contract_file_is_what_stages_read(repo: Path):
    _edit(repo / "conf/contracts/telco_churn.yaml", lambda c: c.update(segments=["Contract"]))
    assert load_contract(load_params(repo / "params.yaml")["data"]).segments == ("Contract",)


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [("task", "regression", "task 'regression'"), ("name", "other", "name 'other'"), ("source", "x.csv", "x.csv")],
)
def test_a_reference_that_disagrees_with_its_contract_is_refused(repo: Path, key: str, value: str, named: str):
    _edit(repo / "params.yaml", lambda p: p["data"].update({key: value}))
    with pytest.raises(ConfigError, match=r"params.yaml: data: disagrees with .*telco_churn.yaml") as err:
        load_params(repo / "params.yaml")
    assert named in str(err.value)


def test_a_missing_contract_file_or_unknown_key_is_refused(repo: Path):
    (repo / "conf/contracts/telco_churn.yaml").unlink()
    with pytest.raises(ConfigError, match=r"data.contract: contract file .*telco_churn.yaml not found"):
        load_params(repo / "params.yaml")
    _edit(repo / "params.yaml", lambda p: p["data"].update(features={}))
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['features'\]"):
        load_params(repo / "params.yaml")


def test_an_inline_contract_still_loads(repo: Path):
    inline = yaml.safe_load((repo / "conf/contracts/titanic.yaml").read_text(encoding="utf-8"))
    _edit(repo / "params.yaml", lambda p: p.update(data=inline))
    assert load_contract(load_params(repo / "params.yaml")["data"]).name == "titanic"


def test_every_stage_that_reads_the_data_set_depends_on_its_contract_file():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    readers = {name for name, stage in stages.items() if "data" in stage.get("params", [])}
    depending = {name for name, stage in stages.items() if "${data.contract}" in stage.get("deps", [])}
    assert readers == depending == {"prepare", "featurize", "evaluate", "package"}
