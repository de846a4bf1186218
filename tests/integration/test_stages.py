"""Each stage's run() on a small sample of the real data in a temporary folder, end to end in-process: one chain
per model family (the suite's ``sample_pipelines``), shared by the tests that read it and copied by those that
change it."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tabrepro.artefacts import ServeParams
from tabrepro.config.params import (
    EvaluateParams,
    FeaturesParams,
    ModelParams,
    PackageParams,
    PathsParams,
    SplitParams,
    TrainParams,
    TuneParams,
)
from tabrepro.contract.spec import load_contract
from tabrepro.contract.table import ContractViolation
from tabrepro.evaluation.gate import GateError
from tabrepro.io.staging import read_json
from tabrepro.reporting.markdown import GateRecord, render_gates
from tabrepro.reporting.report import parse_gate
from tabrepro.stages import evaluate, package, prepare, run_stage
from tabrepro.training.onnx_export import PackagingError
from tests.conftest import gate_only, sample_params, write_sample

SMALL_TUNE = TuneParams(n_trials=3, cv_folds=3, n_startup_trials=2)
SMALL_SPACES = {
    "xgboost": {"max_depth": {"distribution": "int", "low": 2, "high": 5}},
    "logreg": {"C": {"distribution": "log_float", "low": 0.01, "high": 10}},
    "random_forest": {"min_samples_leaf": {"distribution": "int", "low": 1, "high": 20}},
}
SMALL_MODELS = {
    "xgboost": {"n_estimators": 300, "learning_rate": 0.1, "max_depth": 3},
    "logreg": {"C": 1.0, "max_iter": 500},
    "random_forest": {"n_estimators": 50, "max_depth": 6},
}


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, params: dict) -> Path:
    """A folder with 1,200 raw Telco rows and a params.yaml whose paths all point inside it."""
    p = write_sample(tmp_path, params, rows=1200, seed=0)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _sections(params: dict) -> dict:
    return {
        "paths": PathsParams.model_validate(params["paths"]),
        # 180 test rows: the data set's gate limits are for the full data; keep one criterion a small sample meets
        "contract": load_contract(params["data"]),
        "policy": gate_only(params.get("policy"), min_roc_auc=0.7),
        "split": SplitParams.model_validate(params["split"]),
        "features": FeaturesParams.model_validate(params["features"]),
        "train": TrainParams.model_validate(params["train"]),
        "evaluate": EvaluateParams.model_validate(params["evaluate"]),
    }


def _digest(paths: list[Path]) -> dict[str, str]:
    files = sorted(f for p in paths for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file())
    return {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def _chain(family: str, params: dict) -> dict:
    """The options of the suite's stage chain (``sample_pipelines``) for ``family``: 1,200 rows, a 3-trial search."""
    model = ModelParams(
        name=family,
        params=SMALL_MODELS[family],
        early_stopping_rounds=20 if family == "xgboost" else None,
        search_space=SMALL_SPACES[family],
    )
    train = TrainParams.model_validate(params["train"])
    package = PackageParams(build_bento=False, latency_rows=20)
    return {
        "rows": 1200,
        "seed": 0,
        "model": model,
        "tune": SMALL_TUNE,
        "train": train,
        "train_seed": 1,
        "package": package,
    }


@pytest.fixture
def chained(sample_pipelines, params, tmp_path, monkeypatch) -> Callable[[str], tuple[Path, dict]]:
    """A private copy of the shared chain of a family, as the working folder, and its sections (for a test that
    changes outputs)."""

    def copy(family: str) -> tuple[Path, dict]:
        work = sample_pipelines.copy(tmp_path / "run", **_chain(family, params))
        monkeypatch.chdir(work)
        return work, _sections(sample_params(params))

    return copy


@pytest.mark.parametrize("family", ["xgboost", "logreg", "random_forest"])
def test_stages_chain_for_each_model_family(sample_pipelines, params, family, monkeypatch):
    workdir = sample_pipelines(**_chain(family, params))  # shared: read only
    monkeypatch.chdir(workdir)
    s = _sections(sample_params(params))
    paths = s["paths"]
    best = read_json(paths.best_params)
    assert best["model"] == family
    assert best["source"] == "search"
    assert best["search"]["trials_completed"] + best["search"]["trials_pruned"] == 3
    tuned = read_json(Path(paths.tune_reports) / "metrics.json")
    assert 0.7 < tuned["best_cv_roc_auc"] <= 1
    assert {p.name for p in (Path(paths.tune_reports) / "figures").iterdir()} == {
        "optimization_history.png",
        "param_importances.png",
    }
    assert len(pd.read_csv(Path(paths.tune_study) / "trials.csv")) == 3
    quality = read_json(paths.data_quality)
    assert quality["rows"]["in"] == 1200
    assert sum(v["rows"] for v in quality["class_balance"].values()) == 1200
    assert (Path(paths.features) / "train.parquet").is_file()
    assert read_json(paths.reference_stats)["features"]["tenure"]["type"] == "numeric"
    metrics = read_json(paths.metrics)
    meta = read_json(Path(paths.model) / "meta.json")
    assert metrics["model"] == family
    assert metrics["pipeline_sha256"] == meta["sha256"]
    assert 0.7 < metrics["roc_auc"] < 0.95
    assert 0 < metrics["threshold"] < 1
    predictions = pd.read_parquet(paths.predictions)
    test_rows = quality["class_balance"]["test"]["rows"]
    assert len(predictions) == test_rows
    assert predictions["probability"].between(0, 1).all()
    figures = {"roc.png", "pr.png", "calibration.png", "confusion.png", "cost.png", "importance.png"}
    assert {p.name for p in Path(paths.figures).iterdir()} == figures | (
        set() if family == "random_forest" else {"contributions.png"}
    )
    assert {p.name for p in Path(paths.plots).iterdir()} == {
        f"{n}.json" for n in ("roc", "pr", "calibration", "confusion", "cost")
    }
    _check_evaluation(metrics, predictions, paths, family)
    assert (Path(paths.train_live) / "metrics.json").is_file()
    packaged = read_json(paths.package_report)
    assert packaged["parity"]["label_flips"] == 0
    assert packaged["parity"]["max_abs_diff"] < 1e-5
    assert packaged["parity"]["rows"] == test_rows
    assert packaged["predictions_match_evaluate"] == "yes"
    assert (Path(paths.serving) / "model.onnx").stat().st_size == packaged["model"]["size_bytes"]
    assert not list(workdir.glob(".staging-*")), "staging folders must be cleaned up"
    _check_run_records(paths, tuned, packaged)


def _check_run_records(paths: PathsParams, tuned: dict, packaged: dict) -> None:
    """Timings, hosts and the Optuna journal (wall-clock times) are in the run records, not in the outputs."""
    assert "seconds" not in tuned and all("seconds" not in f for f in tuned["families"].values())
    assert sorted(p.name for p in Path(paths.tune_study).iterdir()) == ["study.json", "trials.csv"]
    assert (Path(paths.runs) / "tune" / "journal.log").stat().st_size > 0
    tune_record, package_record = (read_json(Path(paths.runs) / f"{stage}.json") for stage in ("tune", "package"))
    assert tune_record["search_seconds"] >= 0 and tune_record["host"] and tune_record["git_revision"]
    assert "latency_single_row" not in packaged and "git_revision" not in packaged["bento"]["labels"]
    assert package_record["graphs"]["model.onnx"]["latency_single_row"]["rows"] == 20


def _check_evaluation(metrics: dict, predictions: pd.DataFrame, paths: PathsParams, family: str) -> None:
    for name in ("roc_auc", "pr_auc", "brier"):
        assert metrics[f"{name}_ci"]["lo"] <= metrics[name] <= metrics[f"{name}_ci"]["hi"], name
    baseline = metrics["baselines"]["logistic"]["roc_auc"]
    # each rounded to 6 places: the difference of the rounded values is within one unit of the 6th
    assert metrics["vs_logistic"]["roc_auc_diff"] == pytest.approx(metrics["roc_auc"] - baseline, abs=1e-6)
    assert metrics["baselines"]["majority"]["roc_auc"] == 0.5
    assert 0 <= metrics["ece"] < 0.3
    assert set(metrics["segments"]) == {"Contract", "SeniorCitizen", "gender"}
    assert set(metrics["segments"]["Contract"]["levels"]) == {"Month-to-month", "One year", "Two year"}
    assert sum(v["n"] for v in metrics["segments"]["gender"]["levels"].values()) == metrics["n"]
    verdicts = {c["verdict"] for c in metrics["gate"]["checks"].values()}  # words: `dvc metrics diff` shows them
    assert metrics["gate"]["verdict"] == ("pass" if verdicts == {"pass"} else "fail") and verdicts <= {"pass", "fail"}
    importance = read_json(Path(paths.explain) / "importance.json")
    assert {r["feature"] for r in importance} <= set(read_json(paths.explain + "/single_feature_auc.json"))
    contributions = [c for c in predictions.columns if c.startswith("contribution__")]
    if family == "random_forest":
        assert contributions == []
    else:  # per-row contributions add up to the model's log-odds
        p = predictions["probability"].to_numpy()
        total = predictions[contributions].sum(axis=1).to_numpy()
        assert total == pytest.approx(np.log(p / (1 - p)), abs=1e-3)
    card = Path(paths.model_card).read_text()
    assert f"sha256 `{metrics['pipeline_sha256']}`" in card and "## Promotion gate" in card


def test_failed_prepare_leaves_previous_outputs_intact(chained):
    workdir, s = chained("logreg")
    outputs = [workdir / p for p in ("data", "models", "reports")]
    before = _digest(outputs)
    raw = pd.read_csv("raw/telco.csv", dtype="str", keep_default_na=False)
    raw.loc[10, "Contract"] = "Three year"
    raw.to_csv("raw/telco.csv", index=False)
    with pytest.raises(ContractViolation, match="Three year"):
        prepare.run(s["paths"], s["contract"], s["split"])
    assert _digest(outputs) == before
    assert not list(workdir.glob(".staging-*"))


def test_package_refuses_when_onnx_disagrees_and_builds_nothing(chained):
    workdir, s = chained("xgboost")
    outputs = [workdir / "models", workdir / "reports", workdir / "bentos"]
    before = _digest(outputs)
    # a tolerance no float32 graph can meet: the real converted model now "disagrees" with the pipeline
    with pytest.raises(PackagingError, match=r"max \|Δp\| .* \(tolerance 1e-15\).*nothing was built"):
        package.run(s["paths"], s["contract"], PackageParams(tolerance=1e-15, build_bento=False), ServeParams())
    assert _digest(outputs) == before


def test_stage_main_reports_bad_params_and_exits_2(workdir, capfd):
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    params["split"]["train"] = 1.2
    (workdir / "bad.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(SystemExit) as exit_info:
        run_stage("prepare", prepare._main, ["--params", "bad.yaml"])
    assert exit_info.value.code == 2
    assert "split.train: Input should be less than 1" in capfd.readouterr().err
    assert not (workdir / "data").exists()


def test_package_refuses_a_model_that_failed_the_gate_unless_overridden(chained):
    workdir, s = chained("logreg")
    impossible = gate_only(s["policy"].model_dump(mode="json"), min_roc_auc=0.999)
    evaluate.run(s["paths"], s["contract"], s["evaluate"], impossible)
    metrics = read_json(s["paths"].metrics)
    assert metrics["gate"]["verdict"] == "fail"
    assert metrics["gate"]["reasons"][0].startswith("min_roc_auc: test ROC-AUC is")
    outputs = [workdir / "models", workdir / "bentos", workdir / "reports" / "package.json"]
    before = _digest(outputs)
    with pytest.raises(GateError, match=r"not packaged:\n  min_roc_auc: test ROC-AUC is 0\.\d+, must be >= 0\.999"):
        package.run(s["paths"], s["contract"], PackageParams(build_bento=False), ServeParams())
    assert _digest(outputs) == before
    override = PackageParams(build_bento=False, latency_rows=20, override_gate="demo: accepted by the reviewer")
    package.run(s["paths"], s["contract"], override, ServeParams())
    packaged = read_json(s["paths"].package_report)
    assert packaged["gate"] == {
        "verdict": "fail",
        "reasons": metrics["gate"]["reasons"],
        "checks": metrics["gate"]["checks"],
        "overridden": "yes",
        "override_reason": "demo: accepted by the reviewer",
    }
    # `tabrepro report` renders what package wrote: the override, with its reason, not a bare FAILED
    gate = parse_gate(packaged, source=s["paths"].package_report)
    section = "\n".join(render_gates([GateRecord(s["paths"].package_report, gate, None)]))
    assert "overridden (package.override_gate): demo: accepted by the reviewer" in section
    assert "min_roc_auc: test ROC-AUC is" in section and "FAILED" not in section
