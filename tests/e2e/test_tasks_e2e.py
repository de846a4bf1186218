"""Every tabular task end to end (issue 21): a regression and a multiclass table through `dvc exp run`, `tabrepro
score` and the service over HTTP (hostile input included), and a regression experiment against its baseline.

- ``islr_wage`` (regression, the full 3,000 rows): the contract declares ``logwage`` (the log of the target), so the
  gate's single-feature leakage alarm refuses the model and nothing is packaged; the user's YAML edit (deleting the
  ``logwage:`` line: an undeclared column is dropped by prepare) makes the same command pass. That run, committed,
  is the baseline of a ridge variant: `dvc metrics diff` and `tabrepro report` read the change by direction.
- ``penguins`` (multiclass, 344 rows with missing values): labels and class probabilities in the contract's order.

One copy serves the regression steps (module fixture); penguins has its own. The copies' tuning budget is the small
one of every e2e test (tests/e2e/conftest.py). Metrics are read through the typed models of ``tabrepro.artefacts``.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

from tabrepro.artefacts import MulticlassMetrics, RegressionMetrics, read_artefact
from tests.e2e.conftest import TIMEOUT_S, copy_repository, dvc, env, git
from tests.support.local_serve import start_server, stop_server

pytestmark = pytest.mark.e2e

WAGE_RAW = "data/raw/islr_wage.csv"
PENGUINS_RAW = "data/raw/penguins.csv"
METRICS = Path("reports/metrics.json")
CLASSES = ["Adelie", "Chinstrap", "Gentoo"]
RECORDS = 20  # records sent to the service, compared with score's rows


def _timed(label: str, started: float) -> None:
    print(f"[timing] {label}: {time.monotonic() - started:.1f} s")


def _score(repo: Path, raw: str) -> pd.DataFrame:
    command = [sys.executable, "-m", "tabrepro.cli", "score", "--input", raw, "--output", "scores.csv", "--no-progress"]
    done = subprocess.run(command, cwd=repo, env=env(), capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stdout + done.stderr
    return pd.read_csv(repo / "scores.csv")


def _records(repo: Path, raw: str, *, drop: list[str]) -> list[dict[str, Any]]:
    """The raw file's rows as a client sends them: text as written, blank cells included, undeclared columns off."""
    table = pd.read_csv(repo / raw, dtype="str", keep_default_na=False)
    return table.drop(columns=drop).to_dict(orient="records")


def _post(url: str, records: list[dict[str, Any]]) -> httpx.Response:
    return httpx.post(f"{url}/predict", json={"records": records}, timeout=30)


def _serve(repo: Path, bentoml_home: Path, label: str, sent: dict[str, list[Any]]) -> tuple[dict, dict, str]:
    """Start the service on ``repo``'s serving folder, post each named batch of records, read the OpenAPI document,
    stop it: (responses by name, the document, the server's log)."""
    started = time.monotonic()
    proc, url = start_server(repo / "models" / "serving", bentoml_home=bentoml_home)
    try:
        answers = {name: _post(url, records) for name, records in sent.items()}
        docs = httpx.get(f"{url}/docs.json", timeout=10).json()
    finally:
        log = stop_server(proc)
    _timed(f"{label}: the service (start, answers, stop)", started)
    return answers, docs, log


@dataclass
class Wage:
    repo: Path
    refused: subprocess.CompletedProcess
    refused_metrics: RegressionMetrics
    refused_packaged: str  # what the refused run changed of package's outputs (git status, the serving folder)


@pytest.fixture(scope="module")
def wage(tmp_path_factory: pytest.TempPathFactory) -> Wage:
    """islr_wage as drafted (refused for the leak), then with ``logwage`` ignored and run again (passing)."""
    started = time.monotonic()
    repo = copy_repository(tmp_path_factory.mktemp("wage"))
    _timed("copy_repository", started)
    started = time.monotonic()
    refused = dvc(repo, "exp", "run", "-S", "data=islr_wage", check=False)
    _timed("islr_wage as drafted: dvc exp run (refused)", started)
    refused_metrics = read_artefact(repo / METRICS, RegressionMetrics)
    serving = "models/serving exists" if (repo / "models" / "serving").exists() else ""
    refused_packaged = git(repo, "status", "--porcelain", "reports/package.json", "bentos").stdout + serving
    contract = repo / "conf" / "contracts" / "islr_wage.yaml"
    lines = contract.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if not line.startswith("  logwage:")]
    assert len(kept) == len(lines) - 1, "the contract declares logwage on one line"
    contract.write_text("".join(kept), encoding="utf-8")  # the user's edit: logwage is not a feature
    started = time.monotonic()
    dvc(repo, "exp", "run", "-S", "data=islr_wage")
    _timed("islr_wage, logwage ignored: dvc exp run (passes)", started)
    return Wage(repo, refused, refused_metrics, refused_packaged)


def test_the_leak_is_refused_by_name_and_nothing_is_packaged(wage: Wage) -> None:
    assert wage.refused.returncode != 0
    output = wage.refused.stdout + wage.refused.stderr
    assert "feature 'logwage' alone (leakage alarm)" in output, output[-3000:]
    assert "not packaged" in output
    metrics = wage.refused_metrics
    assert not metrics.gate.passed
    assert metrics.leakage.max_single_feature == "logwage" and metrics.leakage.statistic == "r2"
    assert metrics.leakage.value > 0.9  # log(wage) explains wage
    assert any("logwage" in reason for reason in metrics.gate.reasons), metrics.gate.reasons
    assert wage.refused_packaged == "", wage.refused_packaged  # the committed package record stands, no bento


def test_with_logwage_ignored_the_regression_passes(wage: Wage) -> None:
    repo = wage.repo
    metrics = read_artefact(repo / METRICS, RegressionMetrics)
    assert metrics.gate.passed, metrics.gate.reasons
    assert metrics.leakage.max_single_feature != "logwage"
    assert metrics.rmse_ci.lo <= metrics.rmse <= metrics.rmse_ci.hi
    assert metrics.mae_ci.lo <= metrics.mae <= metrics.mae_ci.hi
    assert metrics.r2_ci.lo <= metrics.r2 <= metrics.r2_ci.hi
    assert metrics.n == 450  # the test split of 3,000 rows: the full file, not a sample
    assert metrics.rmse < metrics.baselines.mean.rmse  # beats the constant predictor on the same rows
    assert metrics.vs_baselines.mean.rmse_diff < 0
    prepared = pd.read_parquet(repo / "data" / "prepared" / "train.parquet")
    assert "logwage" not in prepared.columns  # undeclared: dropped by prepare
    figures = {p.name for p in (repo / "reports" / "figures").iterdir()}
    assert {"predicted_vs_actual.png", "residuals.png"} <= figures
    params = yaml.safe_load((repo / "params.yaml").read_text(encoding="utf-8"))
    assert params["data"]["name"] == "islr_wage" and params["data"]["task"] == "regression"


def test_score_and_the_service_answer_the_regression(wage: Wage, tmp_path: Path) -> None:
    repo = wage.repo
    started = time.monotonic()
    scores = _score(repo, WAGE_RAW)
    _timed("islr_wage: tabrepro score", started)
    assert list(scores.columns[:2]) == ["row", "prediction"] and "probability" not in scores.columns
    assert scores["row"].tolist() == list(range(2, 3002))  # keyed by the line in the file (the header is 1)
    assert scores["prediction"].between(0, 400).all() and scores["prediction"].std() > 1

    records = _records(repo, WAGE_RAW, drop=["wage", "logwage", "region"])[:RECORDS]
    sent = {
        "answer": records,
        "age": [records[0], {**records[1], "age": "forty"}],
        "maritl": [{**records[0], "maritl": "6. Engaged"}],
        "missing": [{k: v for k, v in records[0].items() if k != "education"}],
        "leaked": [{**records[0], "logwage": "4.3"}],
    }
    got, docs, log = _serve(repo, tmp_path / "bentoml", "islr_wage", sent)
    answer, missing, leaked = got["answer"], got["missing"], got["leaked"]
    hostile = {field: got[field] for field in ("age", "maritl")}
    assert answer.status_code == 200, answer.text + log[-2000:]
    body = answer.json()
    assert body["task"] == "regression"
    served = np.array([p["prediction"] for p in body["predictions"]])
    assert all(set(p) >= {"prediction"} and "probability" not in p for p in body["predictions"])
    np.testing.assert_allclose(served, scores["prediction"].head(RECORDS), rtol=1e-5)
    item = docs["components"]["schemas"]["PredictResponse"]["properties"]["predictions"]["items"]
    assert "prediction" in item["required"] and "probability" not in item["properties"]
    for field, response in hostile.items():
        index = 1 if field == "age" else 0
        assert response.status_code == 400, response.text
        assert f"records[{index}].{field}" in response.json()["error"], response.text
    # no feature of the wage contract is nullable: a record without one is refused, by name
    assert missing.status_code == 400 and "records[0].education" in missing.json()["error"], missing.text
    # the ignored column is no field of the service any more: refused by name, as any unknown field
    assert leaked.status_code == 400 and "records[0].logwage: unknown field" in leaked.json()["error"], leaked.text


def _md_row(text: str, metric: str) -> list[str]:
    """The cells of the Markdown table row whose metric cell is ``metric`` (as dvc or tabrepro writes it)."""
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if metric in cells or f"`{metric}`" in cells:
            return cells
    raise AssertionError(f"no row for {metric!r} in:\n{text}")


def _close(cell: str, value: float) -> bool:
    return math.isclose(float(cell), value, rel_tol=1e-3, abs_tol=1e-4)


def test_a_regression_variant_reads_against_its_committed_baseline(wage: Wage) -> None:
    repo = wage.repo
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "islr_wage without logwage: the baseline")
    base = read_artefact(repo / METRICS, RegressionMetrics)
    started = time.monotonic()
    dvc(repo, "exp", "run", "-S", "data=islr_wage", "-S", "model=ridge")
    _timed("islr_wage, ridge variant: dvc exp run", started)
    new = read_artefact(repo / METRICS, RegressionMetrics)
    assert new.model == "ridge" and base.model != "ridge", (base.model, new.model)
    assert new.rmse != base.rmse

    diff = dvc(repo, "metrics", "diff", "HEAD", "--md").stdout
    for metric in ("rmse", "mae", "r2"):
        cells = _md_row(diff, metric)
        assert "reports/metrics.json" in cells, cells
        old_cell, new_cell = cells[cells.index(metric) + 1 : cells.index(metric) + 3]
        assert _close(old_cell, getattr(base, metric)) and _close(new_cell, getattr(new, metric)), (metric, cells)

    command = [sys.executable, "-m", "tabrepro.cli", "report", "--base", "HEAD"]
    started = time.monotonic()
    done = subprocess.run(command, cwd=repo, env=env(), capture_output=True, text=True, timeout=TIMEOUT_S)
    _timed("tabrepro report --base HEAD", started)
    assert done.returncode == 0, done.stdout + done.stderr
    for metric, lower_is_better in (("rmse", True), ("mae", True), ("r2", False)):
        old, now = getattr(base, metric), getattr(new, metric)
        cells = _md_row(done.stdout, metric)
        assert _close(cells[1], old) and _close(cells[2], now) and _close(cells[3], now - old), (metric, cells)
        better = (now < old) if lower_is_better else (now > old)
        assert cells[4] == f"{'better' if better else 'worse'} ({'↓' if lower_is_better else '↑'})", cells
    moved = f"rmse {base.rmse:.3f} -> {new.rmse:.3f}, r2 {base.r2:.4f} -> {new.r2:.4f}"
    print(f"[report] {new.model} against {base.model}: {moved}")
    assert "gate: **passed** (base: passed)" in done.stdout
    val = json.loads((repo / "reports" / "train" / "metrics.json").read_text(encoding="utf-8"))["model_val_rmse"]
    old_val = json.loads(git(repo, "show", "HEAD:reports/train/metrics.json").stdout)["model_val_rmse"]
    cells = _md_row(done.stdout, "model_val_rmse")  # train's validation RMSE: lower is better too
    assert cells[4] == f"{'better' if val < old_val else 'worse'} (↓)", cells


@pytest.fixture(scope="module")
def penguins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    started = time.monotonic()
    repo = copy_repository(tmp_path_factory.mktemp("penguins"))
    dvc(repo, "exp", "run", "-S", "data=penguins")
    _timed("penguins: copy_repository + dvc exp run", started)
    return repo


def test_penguins_run_as_multiclass(penguins: Path) -> None:
    metrics = read_artefact(penguins / METRICS, MulticlassMetrics)
    assert metrics.gate.passed, metrics.gate.reasons
    assert metrics.log_loss_ci.lo <= metrics.log_loss <= metrics.log_loss_ci.hi
    assert metrics.log_loss < metrics.baselines.prior.log_loss
    assert 0.8 < metrics.accuracy <= 1 and 0.8 < metrics.f1_macro <= 1 and 0.9 < metrics.roc_auc_ovr <= 1
    assert list(metrics.per_class) == CLASSES
    assert (penguins / "reports" / "figures" / "confusion.png").stat().st_size > 1000
    confusion = json.loads((penguins / "reports" / "plots" / "confusion.json").read_text(encoding="utf-8"))
    assert len(confusion) == metrics.n and {c for p in confusion for c in p.values()} <= set(CLASSES)
    right = sum(p["actual"] == p["predicted"] for p in confusion)
    assert math.isclose(right / metrics.n, metrics.accuracy, rel_tol=1e-5)  # the file's 6 digits


def test_score_and_the_service_answer_the_multiclass(penguins: Path, tmp_path: Path) -> None:
    started = time.monotonic()
    scores = _score(penguins, PENGUINS_RAW)
    _timed("penguins: tabrepro score", started)
    probabilities = [f"probability__{c}" for c in CLASSES]
    assert list(scores.columns[:5]) == ["row", "label", *probabilities]
    assert len(scores) == 344
    np.testing.assert_allclose(scores[probabilities].sum(axis=1), 1, atol=1e-5)
    assert (scores["label"] == scores[probabilities].idxmax(axis=1).str.removeprefix("probability__")).all()

    records = _records(penguins, PENGUINS_RAW, drop=["species", "year"])
    blank = next(i for i, r in enumerate(records) if r["sex"] == "" and r["body_mass_g"] != "")
    chosen = [*range(RECORDS), blank]
    sent = [records[i] for i in chosen]
    batches = {
        "answer": sent,
        "island": [{**records[0], "island": "Atlantis"}],
        "body_mass_g": [{**records[0], "body_mass_g": "heavy"}],
        "null_sex": [{**records[0], "sex": None}],
    }
    got, docs, log = _serve(penguins, tmp_path / "bentoml", "penguins", batches)
    answer, null_sex = got["answer"], got["null_sex"]
    hostile = {field: got[field] for field in ("island", "body_mass_g")}
    assert answer.status_code == 200, answer.text + log[-2000:]
    body = answer.json()
    assert body["task"] == "multiclass"
    got = body["predictions"]
    assert [list(p["probabilities"]) for p in got] == [CLASSES] * len(chosen)  # keyed by class, in order
    served = np.array([[p["probabilities"][c] for c in CLASSES] for p in got])
    expected = scores.iloc[chosen]
    np.testing.assert_allclose(served, expected[probabilities].to_numpy(), atol=1e-5)
    assert [p["label"] for p in got] == expected["label"].tolist()
    item = docs["components"]["schemas"]["PredictResponse"]["properties"]["predictions"]["items"]
    assert item["properties"]["probabilities"]["required"] == CLASSES
    assert {"label", "probabilities"} <= set(item["required"])
    for field, response in hostile.items():
        assert response.status_code == 400, response.text
        assert f"records[0].{field}" in response.json()["error"], response.text
    assert null_sex.status_code == 200, null_sex.text  # sex is nullable in the contract
    assert json.loads(null_sex.text)["predictions"][0]["label"] in CLASSES
