"""`dvc repro` on a copy of the repository: runs, is a no-op the second time, is reproducible, and stops bad
input at the door without touching the last good outputs."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import dvc, git

pytestmark = pytest.mark.e2e

RAW = "data/raw/telco_customer_churn.csv"
OUTPUTS = ("data/prepared", "data/features", "models", "reports/metrics.json", "reports/data_quality.json")


def _digest(repo: Path) -> dict[str, str]:
    found = {}
    for rel in OUTPUTS:
        path = repo / rel
        for f in [path] if path.is_file() else sorted(path.rglob("*")):
            if f.is_file():
                found[str(f.relative_to(repo))] = hashlib.sha256(f.read_bytes()).hexdigest()
    found["dvc.lock"] = hashlib.sha256((repo / "dvc.lock").read_bytes()).hexdigest()
    return found


def _lock_hashes(repo: Path) -> dict[str, str]:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return {o["path"]: o["md5"] for stage in lock["stages"].values() for o in stage.get("outs", [])}


def test_repro_outputs_and_noop(reproduced: Path):
    metrics = yaml.safe_load((reproduced / "reports/metrics.json").read_text())
    for key in ("roc_auc", "pr_auc", "log_loss", "brier", "accuracy", "f1", "threshold"):
        assert isinstance(metrics[key], float), key
    assert 0.8 < metrics["roc_auc"] < 0.87  # above 0.87 on Telco means leakage
    again = dvc(reproduced, "repro")
    assert "Data and pipelines are up to date." in again.stdout
    assert "Running stage" not in again.stdout


# Records of when things ran differ from run to run by nature: the study journal (trial timestamps), the tuning
# wall time, the bento archive (its build time) and the package report (measured latencies).
NOT_REPRODUCIBLE = {"models/tune", "reports/tune/metrics.json", "bentos/tabrepro.bento", "reports/package.json"}


def test_repro_force_twice_gives_identical_hashes(reproduced: Path):
    dvc(reproduced, "repro", "-f")
    first = _lock_hashes(reproduced)
    dvc(reproduced, "repro", "-f")
    second = _lock_hashes(reproduced)
    assert {
        "data/prepared",
        "models/best_params.json",
        "models/model",
        "reports/metrics.json",
        "models/serving",
    } <= set(first)
    for path in set(first) - NOT_REPRODUCIBLE:
        assert first[path] == second[path], path


# --- bad input: each mutation makes `dvc repro` fail with a message naming the problem; nothing changes ---


def _edit_csv(edit: Callable[[list[list[str]]], list[list[str]]]) -> Callable[[Path], None]:
    def apply(repo: Path) -> None:
        rows = list(csv.reader(io.StringIO((repo / RAW).read_text())))
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(edit(rows))
        (repo / RAW).write_text(out.getvalue())

    return apply


def _set_cell(line: int, column: str, value: str) -> Callable[[Path], None]:
    def edit(rows: list[list[str]]) -> list[list[str]]:
        rows[line - 1][rows[0].index(column)] = value
        return rows

    return _edit_csv(edit)


def _drop_column(column: str) -> Callable[[Path], None]:
    def edit(rows: list[list[str]]) -> list[list[str]]:
        i = rows[0].index(column)
        return [r[:i] + r[i + 1 :] for r in rows]

    return _edit_csv(edit)


def _duplicate_id(rows: list[list[str]]) -> list[list[str]]:
    rows[2][0] = rows[1][0]
    return rows


def _edit_params(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(repo: Path) -> None:
        params = yaml.safe_load((repo / "params.yaml").read_text())
        edit(params)
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    return apply


def _empty_file(repo: Path) -> None:
    (repo / RAW).write_text("")


BAD_INPUTS = {
    "missing column": (_drop_column("Contract"), ["column 'Contract': column is missing"]),
    "wrong type": (_set_cell(5, "tenure", "five"), ["column 'tenure': expected a number", "line 5: 'five'"]),
    "out of range": (_set_cell(7, "MonthlyCharges", "-20"), ["column 'MonthlyCharges'", "greater_than_or_equal_to"]),
    "unknown category": (_set_cell(9, "Contract", "Three year"), ["column 'Contract'", "'Three year'"]),
    "empty file": (_empty_file, ["the file is empty"]),
    "third target label": (_set_cell(4, "Churn", "Maybe"), ["column 'Churn'", "'Maybe'"]),
    "duplicate ids": (_edit_csv(_duplicate_id), ["column 'customerID': duplicate values"]),
    "contract unknown type": (
        _edit_params(lambda p: p["data"]["features"]["tenure"].update(type="integer")),
        ["data.features.tenure.type", "'integer'"],
    ),
    "contract typo key": (
        _edit_params(lambda p: p["data"]["features"]["TotalCharges"].update(nulable=True)),
        ["data.features.TotalCharges.nulable: unknown key"],
    ),
    "negative cost": (
        _edit_params(lambda p: p["evaluate"]["cost"].update(false_positive=-5)),
        ["evaluate.cost.false_positive: Input should be greater than or equal to 0"],
    ),
    "missing cost entry": (
        _edit_params(lambda p: p["evaluate"]["cost"].pop("false_negative")),
        ["evaluate.cost.false_negative: Field required"],
    ),
    "unknown segment column": (
        _edit_params(lambda p: p["data"].update(segments=["Contract", "Region"])),
        ["data: Value error, segments: unknown column(s) ['Region']"],
    ),
    "zero bootstrap resamples": (
        _edit_params(lambda p: p["evaluate"]["bootstrap"].update(n=0)),
        ["evaluate.bootstrap.n: Input should be greater than or equal to 1"],
    ),
    "split ratio above 1": (
        _edit_params(lambda p: p["split"].update(train=1.2)),
        ["split.train: Input should be less than 1"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_stops_repro_and_keeps_outputs(reproduced: Path, case: str):
    mutate, expected = BAD_INPUTS[case]
    git(reproduced, "add", "-A")
    git(reproduced, "commit", "-qm", "last good state", "--allow-empty")
    before = _digest(reproduced)
    mutate(reproduced)
    try:
        proc = dvc(reproduced, "repro", check=False)
        output = proc.stdout + proc.stderr
        assert proc.returncode != 0, output
        for text in expected:
            assert text in output, f"{text!r} not in:\n{output}"
        assert "Traceback" not in output
        assert _digest(reproduced) == before
    finally:
        git(reproduced, "checkout", "--", ".")
    assert "up to date" in dvc(reproduced, "repro").stdout


def test_a_gate_the_model_cannot_pass_stops_repro_at_package(reproduced: Path):
    git(reproduced, "add", "-A")
    git(reproduced, "commit", "-qm", "last good state", "--allow-empty")
    packaged = {k: v for k, v in _digest(reproduced).items() if k.startswith("models/serving")}
    lock_before = yaml.safe_load((reproduced / "dvc.lock").read_text())["stages"]["package"]
    _edit_params(lambda p: p["evaluate"]["gate"].update(min_roc_auc=0.99))(reproduced)
    try:
        proc = dvc(reproduced, "repro", check=False)
        output = proc.stdout + proc.stderr
        assert proc.returncode != 0, output
        assert "Running stage 'evaluate'" in output and "stage package failed" in output
        assert "min_roc_auc: test ROC-AUC is 0.8" in output and "must be >= 0.99" in output
        metrics = json.loads((reproduced / "reports/metrics.json").read_text())
        assert metrics["gate"]["passed"] is False
        assert {k: v for k, v in _digest(reproduced).items() if k.startswith("models/serving")} == packaged
        assert yaml.safe_load((reproduced / "dvc.lock").read_text())["stages"]["package"] == lock_before
        # an explicit, logged override packages it anyway and says so
        _edit_params(lambda p: p["package"].update(override_gate="accepted for a demo by the reviewer"))(reproduced)
        proc = dvc(reproduced, "repro")
        assert "PROMOTION GATE OVERRIDDEN" in proc.stdout + proc.stderr
        report = json.loads((reproduced / "reports/package.json").read_text())
        assert report["gate"]["overridden"] is True and report["bento"]["labels"]["gate"] == "overridden"
    finally:
        git(reproduced, "checkout", "--", ".")
        dvc(reproduced, "checkout", "--force")
    assert "up to date" in dvc(reproduced, "repro").stdout
