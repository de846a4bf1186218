"""The notebooks run headless, top to bottom, in this venv's kernel; git holds them without outputs.

Each notebook is executed in memory (the committed file is never written back) and its printed output is checked:
the exploration notebook against the raw data, the review notebook against the committed reports, and the review
notebook again against two synthetic report folders, one in the old ``metrics.json`` schema (sections missing:
notes, no failure) and one in the full schema (every section shown). Both take every column name from the data
contract: the exploration notebook runs on each data set of ``conf/contracts/`` (``TABREPRO_DATA``), and the review
notebook on reports whose segments and features are another data set's.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import pytest
import yaml
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient
from nbformat import NotebookNode

from tabrepro.contract.spec import load_contract
from tabrepro.io.staging import read_json, write_json
from tests.conftest import REPO

NOTEBOOKS = REPO / "notebooks"
EXPLORE = NOTEBOOKS / "01_explore_raw_data.ipynb"
REVIEW = NOTEBOOKS / "02_review_model.ipynb"
KERNEL_ENV = {"DVC_NO_ANALYTICS": "1", "BENTOML_DO_NOT_TRACK": "True", "MPLBACKEND": "Agg"}
# What evaluate wrote before baselines, bootstrap CIs, segments and the gate existed.
OLD_METRICS_KEYS = (
    "roc_auc", "pr_auc", "log_loss", "brier", "accuracy", "f1", "precision", "recall",
    "threshold", "n", "positive_rate", "threshold_policy", "model", "model_sha256",
)  # fmt: skip


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The kernel's environment: this process's, no telemetry, no GUI.

    IPython's folder goes to a temporary one, for the kernel and for this process (jupyter_client looks it up).
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IPYTHONDIR", str(tmp_path_factory.mktemp("ipython")))
        yield {**os.environ, **KERNEL_ENV}


@pytest.fixture(scope="module")
def explored(kernel_env: dict[str, str]) -> NotebookNode:
    return run_notebook(EXPLORE, cwd=REPO, env=kernel_env)


def execute(notebook: NotebookNode, *, cwd: Path, env: dict[str, str]) -> NotebookNode:
    """Run every cell in a fresh python3 kernel started in ``cwd``; a failing cell raises CellExecutionError."""
    client = NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(cwd)}})
    client.execute(env=env)
    return notebook


def run_notebook(path: Path, *, cwd: Path, env: dict[str, str]) -> NotebookNode:
    """Execute an in-memory copy of the notebook at ``path``; the file itself is never written."""
    return execute(nbformat.read(path, as_version=4), cwd=cwd, env=env)


def output_text(notebook: NotebookNode) -> str:
    """Everything the notebook printed or displayed as text (streams, plain-text and Markdown results)."""
    parts = []
    for cell in notebook.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                parts.append(out.text)
            elif out.output_type in ("execute_result", "display_data"):
                parts.extend(out.data.get(kind, "") for kind in ("text/plain", "text/markdown"))
    return "\n".join(parts)


def count_images(notebook: NotebookNode) -> int:
    return sum("image/png" in out.get("data", {}) for cell in notebook.cells for out in cell.get("outputs", []))


def make_repo(dest: Path, *, metrics: dict[str, Any]) -> Path:
    """A minimal repository root: dvc.yaml (the marker), params.yaml, and the committed reports with ``metrics``.

    Reports that a newer evaluate stage adds (explain/, model card, cost curve) are removed; predictions too.
    """
    dest.mkdir()
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, dest / name)
    shutil.copytree(REPO / "conf" / "contracts", dest / "conf" / "contracts")  # params.yaml's data.contract
    shutil.copytree(REPO / "reports", dest / "reports", ignore=shutil.ignore_patterns("*.parquet"))
    shutil.rmtree(dest / "reports" / "explain", ignore_errors=True)
    (dest / "reports" / "model_card.md").unlink(missing_ok=True)
    (dest / "reports" / "plots" / "cost.json").unlink(missing_ok=True)
    write_json(dest / "reports" / "metrics.json", metrics)
    return dest


def full_schema_metrics() -> dict[str, Any]:
    """metrics.json in the full schema, with values no real run has (so the output can only come from here)."""
    level = {"n": 400, "positive_rate": 0.4, "roc_auc": 0.71, "recall": 0.8, "precision": 0.5}
    return {
        "roc_auc": 0.7, "roc_auc_ci": [0.65, 0.75], "pr_auc": 0.5, "pr_auc_ci": [0.45, 0.55],
        "brier": 0.2, "brier_ci": [0.18, 0.22], "log_loss": 0.6, "accuracy": 0.7, "f1": 0.5,
        "precision": 0.45, "recall": 0.6, "ece": 0.03, "threshold": 0.3, "threshold_policy": "min_cost",
        "expected_cost": 61.5, "n": 1057, "positive_rate": 0.265, "model": "xgboost", "pipeline_sha256": "ab" * 32,
        "bootstrap": {"n": 200, "seed": 7, "level": 0.9},
        "baselines": {
            "majority": {"roc_auc": 0.5, "pr_auc": 0.265, "brier": 0.195},
            "logistic": {"roc_auc": 0.75, "pr_auc": 0.55, "brier": 0.19},
        },
        "vs_logistic": {"roc_auc_diff": -0.05, "roc_auc_diff_ci": [-0.08, -0.02]},
        "segments": {
            "Contract": {
                "levels": {"Month-to-month": level, "Two year": {"n": 12, "positive_rate": 0.0}},
                "roc_auc_gap": None,
                "recall_gap": None,
            },
        },
        "gate": {
            "verdict": "fail",
            "reasons": ["min_roc_auc: test ROC-AUC is 0.7000, must be >= 0.8"],
            "checks": {"min_roc_auc": {"verdict": "fail", "value": 0.7, "limit": 0.8}},
        },
    }  # fmt: skip


def test_python3_kernel_is_this_venv(kernel_env: dict[str, str]) -> None:
    specs = KernelSpecManager().find_kernel_specs()
    assert "python3" in specs, f"no python3 kernel spec found: {specs}"
    probe = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import sys\nprint(sys.prefix)")])
    assert output_text(execute(probe, cwd=REPO, env=kernel_env)).strip() == sys.prefix


def test_exploration_notebook_reports_the_raw_data(explored: NotebookNode) -> None:
    text = output_text(explored)
    assert "rows: 7043, columns: 21" in text
    assert "blank TotalCharges: 11" in text
    assert "rows with tenure 0: 11; the same rows: True" in text  # the blanks are exactly the not-yet-billed
    assert "levels in the data that the contract does not declare: 0" in text
    assert "data_quality.json agrees with the raw file: True" in text


def test_exploration_notebook_draws_its_figures(explored: NotebookNode) -> None:
    assert count_images(explored) == 2  # churn by contract and tenure; numeric distributions by class


def test_review_notebook_shows_the_committed_metrics(kernel_env: dict[str, str]) -> None:
    metrics = read_json(REPO / "reports" / "metrics.json")
    notebook = run_notebook(REVIEW, cwd=REPO, env=kernel_env)
    assert f"ROC-AUC (test): {metrics['roc_auc']:.4f}" in output_text(notebook)
    assert count_images(notebook) >= 1


def test_review_notebook_degrades_on_the_old_metrics_schema(tmp_path: Path, kernel_env: dict[str, str]) -> None:
    committed = read_json(REPO / "reports" / "metrics.json")
    root = make_repo(tmp_path / "repo", metrics={k: committed[k] for k in OLD_METRICS_KEYS if k in committed})
    (root / "notebooks").mkdir()
    # started where Jupyter would start it, without TABREPRO_ROOT: the root is found upward from dvc.yaml
    text = output_text(run_notebook(REVIEW, cwd=root / "notebooks", env=kernel_env))
    assert f"ROC-AUC (test): {committed['roc_auc']:.4f}\n" in text  # no CI recorded, none printed
    for section in ("bootstrap", "baselines", "vs_logistic", "gate", "segments"):
        assert f"note: metrics.json has no {section!r}" in text
    assert "note: reports/explain/importance.json not found" in text
    assert "note: reports/model_card.md not found" in text
    assert "note: reports/predictions_test.parquet not in this checkout" in text


def test_review_notebook_shows_every_section_of_the_full_schema(tmp_path: Path, kernel_env: dict[str, str]) -> None:
    root = make_repo(tmp_path / "repo", metrics=full_schema_metrics())
    write_json(root / "reports" / "explain" / "importance.json", [{"feature": "SyntheticFeature", "importance": 0.1}])
    write_json(root / "reports" / "plots" / "cost.json", [{"threshold": t / 10, "cost": 50 - t} for t in range(11)])
    (root / "reports" / "model_card.md").write_text("# A synthetic model card\n", encoding="utf-8")
    # started in the real repository: TABREPRO_ROOT must win over the dvc.yaml found upward
    notebook = run_notebook(REVIEW, cwd=REPO, env={**kernel_env, "TABREPRO_ROOT": str(root)})
    text = output_text(notebook)
    assert "ROC-AUC (test): 0.7000 (90% CI 0.6500 to 0.7500)" in text
    assert "note: metrics.json has no" not in text
    assert "ROC-AUC minus the logistic baseline's: -0.0500 (90% CI -0.0800 to -0.0200); the model is worse" in text
    assert "promotion gate: FAILED\n  - min_roc_auc: test ROC-AUC is 0.7000, must be >= 0.8" in text
    assert "Month-to-month" in text
    assert "Two year" in text
    assert "SyntheticFeature" in text
    assert "# A synthetic model card" in text
    assert count_images(notebook) >= 2  # curves (with the cost curve) and the feature bars


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_committed_notebook_has_no_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    nbformat.validate(notebook)
    assert notebook.metadata.kernelspec.name == "python3"
    assert set(notebook.metadata) <= {"kernelspec", "language_info"}
    for cell in notebook.cells:
        assert cell.metadata == {}, f"{path.name}: cell {cell.id} has metadata {dict(cell.metadata)}"
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: cell {cell.id} has outputs"
            assert cell.execution_count is None, f"{path.name}: cell {cell.id} has an execution count"


def test_both_notebooks_are_checked() -> None:
    assert {EXPLORE, REVIEW} <= set(NOTEBOOKS.glob("*.ipynb"))


# Data sets without an id, each with what its exploration must report (besides what every data set reports).
EXTRA_DATA = {
    "titanic": ("rows: 1309, columns: 5", ["blank age: 263", "(prepare drops them): ['name']"]),
    "islr_default": (
        "rows: 10000, columns: 4",
        ["no feature has missing values", "strongest numeric feature alone: balance (ROC-AUC 0.948)"],
    ),
    # MOSTYPE declares every code of the codebook; code 14 never occurs in this sample
    "islr_caravan": ("rows: 5822, columns: 86", ["declared levels that never occur: 1"]),
}


@pytest.mark.parametrize("name", sorted(EXTRA_DATA))
def test_exploration_notebook_runs_on_each_data_set(name: str, kernel_env: dict[str, str]) -> None:
    shape, findings = EXTRA_DATA[name]
    notebook = run_notebook(EXPLORE, cwd=REPO, env={**kernel_env, "TABREPRO_DATA": name})
    text = output_text(notebook)
    assert f"contract {name!r}: data/raw/" in text
    assert shape in text
    assert "no id column: rows are keyed by 'row', their line in the file" in text
    assert "levels in the data that the contract does not declare: 0" in text
    assert f"records data set 'telco_churn', not {name!r}; comparison skipped" in text
    for finding in findings:
        assert finding in text
    assert count_images(notebook) == 2


@pytest.mark.parametrize("name", sorted(EXTRA_DATA))
def test_review_notebook_shows_another_data_sets_segments_and_features(
    name: str, tmp_path: Path, kernel_env: dict[str, str]
) -> None:
    raw = yaml.safe_load((REPO / "conf" / "contracts" / f"{name}.yaml").read_text(encoding="utf-8"))
    contract = load_contract(raw)
    segment = contract.segments[0]
    spec = contract.features[segment]
    levels = list(spec.values or (*spec.true_values, *spec.false_values))[:2]
    metrics = full_schema_metrics()
    level = metrics["segments"]["Contract"]["levels"]["Month-to-month"]
    metrics["segments"] = {segment: {"levels": dict.fromkeys(levels, level), "roc_auc_gap": 0.01, "recall_gap": 0.02}}
    root = make_repo(tmp_path / "repo", metrics=metrics)
    params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
    (root / "params.yaml").write_text(yaml.safe_dump({**params, "data": raw}, sort_keys=False), encoding="utf-8")
    importance = [{"feature": f, "importance": 0.1 / (i + 1)} for i, f in enumerate(contract.feature_names[:3])]
    write_json(root / "reports" / "explain" / "importance.json", importance)
    text = output_text(run_notebook(REVIEW, cwd=REPO, env={**kernel_env, "TABREPRO_ROOT": str(root)}))
    assert f"data set: {name}" in text
    assert segment in text
    assert all(str(level) in text for level in levels)
    assert all(f in text for f in contract.feature_names[:3])
    assert "Contract" not in text.replace("data contract", "")


# Data sets of the other tasks, with what their exploration must report about the target.
TASK_DATA = {
    "penguins": [
        "labels other than the declared classes ['Adelie', 'Chinstrap', 'Gentoo']: none",
        "data set 'penguins': 344 rows, 6 features, multiclass, share of 'Adelie' 0.442",
        "strongest numeric feature alone: bill_length_mm (ROC-AUC 0.989)",
    ],
    "islr_wage": [
        "wage: unparseable or missing values: 0",
        "data set 'islr_wage': 3000 rows, 9 features, regression, mean wage 112",
        "strongest numeric feature alone: logwage (|Spearman ρ| 1.000)",  # the log of the target: a leak, in plain view
    ],
}


@pytest.mark.parametrize("name", sorted(TASK_DATA))
def test_exploration_notebook_runs_on_each_task(name: str, kernel_env: dict[str, str]) -> None:
    text = output_text(run_notebook(EXPLORE, cwd=REPO, env={**kernel_env, "TABREPRO_DATA": name}))
    for finding in TASK_DATA[name]:
        assert finding in text
    assert "positive rate" not in text  # a binary word would be a wrong reading of this target


def task_metrics(task: str) -> dict[str, Any]:
    """metrics.json of a regression or multiclass evaluate (the fields the notebook reads), with made-up values."""
    ci, common = {"lo": 0.1, "hi": 0.2}, {"n": 600, "model": "ridge", "pipeline_sha256": "cd" * 32}
    common |= {"bootstrap": {"n": 100, "seed": 3, "level": 0.95}, "gate": {"verdict": "pass", "reasons": []}}
    if task == "regression":
        point = {"rmse": 34.56, "mae": 23.45, "r2": 0.3141, "mape": None}
        baselines = {"mean": {**point, "rmse": 41.0, "r2": 0.0}, "ridge": point}
        vs = {"ridge": {"rmse_diff": -0.25, "rmse_diff_ci": ci}}
        return {"task": task, **point, "rmse_ci": ci, "target_mean": 111.7, **common, "baselines": baselines} | {
            "vs_baselines": vs
        }
    point = {"log_loss": 0.1234, "accuracy": 0.97, "f1_macro": 0.96, "f1_weighted": 0.97, "roc_auc_ovr": 0.995}
    vs = {"logistic": {"log_loss_diff": 0.01, "log_loss_diff_ci": ci}}
    return {"task": task, **point, "log_loss_ci": ci, "ece": 0.02, **common, "baselines": {"prior": point}} | {
        "vs_baselines": vs
    }


@pytest.mark.parametrize("task", ["regression", "multiclass"])
def test_review_notebook_reads_the_other_tasks(task: str, tmp_path: Path, kernel_env: dict[str, str]) -> None:
    root = make_repo(tmp_path / "repo", metrics=task_metrics(task))
    for name in ("roc", "pr", "calibration", "confusion"):  # binary's plots: not this run's
        (root / "reports" / "plots" / f"{name}.json").unlink(missing_ok=True)
    points = [{"actual": a, "predicted": a * 0.9 + 5} for a in (50.0, 100.0, 150.0)]
    write_json(root / "reports" / "plots" / "predicted_vs_actual.json", points)
    if task == "regression":
        frame = pd.DataFrame({"row": [1, 2, 3], "target": [50.0, 100.0, 150.0], "prediction": [55.0, 95.0, 140.0]})
    else:
        frame = pd.DataFrame({"row": [1, 2], "target": [0, 2], "label": ["a", "c"]})
        frame[["probability__a", "probability__b", "probability__c"]] = [[0.8, 0.1, 0.1], [0.1, 0.2, 0.7]]
    frame.to_parquet(root / "reports" / "predictions_test.parquet", index=False)
    notebook = run_notebook(REVIEW, cwd=REPO, env={**kernel_env, "TABREPRO_ROOT": str(root)})
    text = output_text(notebook)
    assert f"task: {task}" in text
    first = "RMSE (test): 34.5600 (95% CI 0.1000 to 0.2000)" if task == "regression" else "log loss (test): 0.1234"
    assert first in text
    assert ("model minus baseline" in text) and ("ROC-AUC (test)" not in text)
    assert "evaluate (test): " + first.split(" (test)")[0] in text
    assert count_images(notebook) >= 2  # the task's curves and its score histogram
