"""`tabrepro contract draft` on the tables without an id (binary, multiclass, regression), and the human edits that
make the committed contracts.

For each table the command drafts a contract; the edits documented in its committed ``conf/contracts/<name>.yaml``
(the comments marked "EDIT:") are replayed here as a small patch; the result must be the committed contract (but
for its prose descriptions) and must accept its table as prepare checks it. The command's refusals (an existing
output, a bad target) exit 2 and write nothing.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tabrepro.cli import main
from tabrepro.contract.spec import DataContract, load_contract
from tabrepro.contract.table import check_table
from tabrepro.io.raw import read_raw
from tests.conftest import REPO


def _edit_default(c: dict[str, Any]) -> None:
    c["features"]["balance"].update(min=0, max=100_000)
    c["features"]["income"].update(min=0, max=10_000_000)
    c["segments"] = ["student"]
    # its policy (max_single_feature_auc 0.99) is a second file, conf/policy/islr_default.yaml


def _edit_titanic(c: dict[str, Any]) -> None:
    c["features"]["age"]["max"] = 120
    c["segments"] = ["sex", "passengerClass"]


def _edit_caravan(c: dict[str, Any]) -> None:
    features = c["features"]
    names = list(features)
    for name in names[names.index("MGODRK") : names.index("MINKGEM") + 1]:
        features[name] = {"type": "numeric", "integer": True, "min": 0, "max": 9}  # L3 bands 0..9
    for name in names:
        if name.startswith("P"):
            features[name] = {"type": "numeric", "integer": True, "min": 0, "max": 9}  # L4 contribution levels
        elif name.startswith("A"):
            features[name] = {"type": "numeric", "integer": True, "min": 0}  # counts of policies
    features["MOSTYPE"] = {"type": "categorical", "values": [str(i) for i in range(1, 42)]}
    features["MOSHOOFD"] = {"type": "categorical", "values": [str(i) for i in range(1, 11)]}
    features["MGEMOMV"]["max"] = 6
    c["segments"] = ["MOSHOOFD"]


def _edit_penguins(c: dict[str, Any]) -> None:
    del c["features"]["year"]  # when the bird was measured, not a trait of it
    c["segments"] = ["island"]


def _edit_wage(c: dict[str, Any]) -> None:
    del c["target"]["max"]
    c["target"].update(min=0, unit="thousand USD")
    c["features"]["age"].update(min=0, max=120)
    c["segments"] = ["race", "education"]
    # logwage (the log of the target) stays declared: evaluate's leakage alarm must catch it


def _edit_carseats(c: dict[str, Any]) -> None:
    del c["target"]["max"]
    c["target"].update(min=0, unit="thousand units")
    c["segments"] = ["ShelveLoc"]


# name -> (file, target, positive (None: the task is proposed by the draft), the documented edits)
TABLES: dict[str, tuple[str, str, str | None, Callable[[dict[str, Any]], None]]] = {
    "islr_default": ("islr_default.csv", "default", "Yes", _edit_default),
    "islr_caravan": ("islr_caravan.csv", "Purchase", "Yes", _edit_caravan),
    "titanic": ("titanic_survival.csv", "survived", "yes", _edit_titanic),
    "penguins": ("penguins.csv", "species", None, _edit_penguins),
    "islr_wage": ("islr_wage.csv", "wage", None, _edit_wage),
    "islr_carseats": ("islr_carseats.csv", "Sales", None, _edit_carseats),
}
TASKS = {"penguins": "multiclass", "islr_wage": "regression", "islr_carseats": "regression"}


def _cli(*args: str | Path) -> int:
    with pytest.raises(SystemExit) as done:
        main([str(a) for a in args])
    return int(done.value.code)


def _prose_free(contract: DataContract) -> dict[str, Any]:
    dump = contract.model_dump()
    dump.pop("description")
    for spec in dump["features"].values():
        spec.pop("description")
    return dump


@pytest.mark.parametrize("name", sorted(TABLES))
def test_draft_plus_documented_edits_is_the_committed_contract_and_accepts_its_table(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file, target, positive, edit = TABLES[name]
    monkeypatch.chdir(REPO)  # the draft's source is the path as given: data/raw/<file>
    out = tmp_path / f"{name}.yaml"
    label = ("--positive", positive) if positive is not None else ()
    assert _cli("contract", "draft", f"data/raw/{file}", "--target", target, *label,
                "--name", name, "--output", out) == 0  # fmt: skip
    drafted = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert "id_column" not in drafted  # none of the tables has a key
    assert drafted["target"].get("task", "binary") == TASKS.get(name, "binary")  # the task proposed is the right one
    edit(drafted)
    contract = load_contract(drafted, where=str(out))
    committed = load_contract(yaml.safe_load((REPO / "conf/contracts" / f"{name}.yaml").read_text(encoding="utf-8")))
    assert _prose_free(contract) == _prose_free(committed)
    assert f"write conf/policy/{name}.yaml" in out.read_text(encoding="utf-8")  # where a policy goes
    raw = read_raw(REPO / contract.source, fmt="csv", contract=contract)
    parsed = check_table(raw, contract, source=contract.source, row_label="line")
    assert len(parsed) == len(raw)


def test_the_committed_titanic_contract_leaves_name_out_and_allows_missing_ages() -> None:
    contract = load_contract(yaml.safe_load((REPO / "conf/contracts/titanic.yaml").read_text(encoding="utf-8")))
    assert "name" not in contract.columns
    assert contract.features["age"].nullable
    assert contract.target.positive == "yes"


def test_an_existing_output_is_kept_unless_force(tmp_path: Path) -> None:
    table = shutil.copy(REPO / "data/raw/titanic_survival.csv", tmp_path / "t.csv")
    out = tmp_path / "t.yaml"
    out.write_text("mine\n", encoding="utf-8")
    args = ("contract", "draft", table, "--target", "survived", "--positive", "yes", "--output", out)
    assert _cli(*args) == 2
    assert out.read_text(encoding="utf-8") == "mine\n"
    assert _cli(*args, "--force") == 0
    assert load_contract(yaml.safe_load(out.read_text(encoding="utf-8"))).name == "t"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--target", "Survived", "--positive", "yes"), "--target 'Survived' is not a column"),
        (("--target", "survived", "--positive", "Yes"), "--positive 'Yes' is not a label of 'survived'"),
        (("--target", "survived", "--positive", "yes", "--name", "a/b"), "--name 'a/b'"),
    ],
)
def test_bad_input_exits_2_naming_it_and_writes_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, args: tuple[str, ...], message: str
) -> None:
    table = shutil.copy(REPO / "data/raw/titanic_survival.csv", tmp_path / "t.csv")
    assert _cli("contract", "draft", table, *args, "--output", tmp_path / "out.yaml") == 2
    assert message in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]


def test_a_table_that_is_not_csv_or_parquet_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    table = tmp_path / "t.txt"
    table.write_text("a,y\n1,yes\n2,no\n", encoding="utf-8")
    assert _cli("contract", "draft", table, "--target", "y", "--positive", "yes", "--output", tmp_path / "o.yaml") == 2
    assert "t.txt: expected a .csv or .parquet file" in caplog.text
