"""The evaluate stage in-process on tiny synthetic regression and multiclass inputs (built in a tmp dir): the
typed metrics.json per task, the plots and figures it declares, the gate's verdict and the leakage alarm."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from tabrepro.artefacts import MulticlassMetrics, RegressionMetrics, read_artefact
from tabrepro.config.params import BootstrapParams, EvaluateParams, PathsParams
from tabrepro.contract.policy import GatePolicy, Policy
from tabrepro.contract.spec import DataContract
from tabrepro.errors import ConfigError
from tabrepro.stages.evaluate import run
from tabrepro.training.modeling import save_model
from tests.conftest import paths_under, write_splits

PARAMS = EvaluateParams(bootstrap=BootstrapParams(n=100, seed=1), segment_min_rows=10)


def _build(root: Path, task: str, *, leak: bool = False, forest: bool = False) -> tuple[PathsParams, DataContract]:
    """Raw CSV, prepared and featurized splits and a fitted model of ``task`` under ``root``."""
    rng = np.random.default_rng(0)
    n = 400
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    group = rng.choice(["a", "b"], n)
    if task == "regression":
        y = 30 + 5 * x1 + 2 * x2 + rng.normal(size=n)
        target = {"column": "y", "task": "regression", "unit": "USD"}
    else:
        y = np.digitize(x1 + 0.5 * rng.normal(size=n), [-0.5, 0.5]).astype(np.int64)
        target = {"column": "y", "task": "multiclass", "classes": ["lo", "mid", "hi"]}
    cols = {"x1": x1, "x2": x2, **({"logy": np.log(y)} if leak else {})}
    features = {k: {"type": "numeric"} for k in cols} | {"group": {"type": "categorical", "values": ["a", "b"]}}
    raw = root / "raw.csv"
    pd.DataFrame({**cols, "group": group, "y": y}).to_csv(raw, index=False)
    contract = DataContract(
        name="toy", source=str(raw), target=target, features=features, segments=("group",), sensitive=("group",)
    )
    key = contract.key_column
    prepared = pd.DataFrame({key: np.arange(2, n + 2), **cols, "group": group, "y": y})
    feats = pd.DataFrame({key: prepared[key], **cols, "group_b": (group == "b").astype(np.float32), "y": y})
    paths = paths_under(root)
    cuts = {"train": slice(0, 240), "val": slice(240, 300), "test": slice(300, n)}
    write_splits(paths, prepared, feats, cuts)
    x = feats.drop(columns=[key, "y"]).to_numpy(dtype=np.float32)[cuts["train"]]
    if task == "regression":
        model, family = Ridge(), "ridge"
    elif forest:
        model, family = RandomForestClassifier(50, random_state=0), "random_forest"
    else:
        model, family = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]), "logreg"
    save_model(model.fit(x, y[cuts["train"]]), family, paths.model)
    return paths, contract


def test_regression_writes_typed_metrics_plots_and_a_passing_gate(tmp_path: Path):
    paths, contract = _build(tmp_path, "regression")
    run(paths, contract, PARAMS, decimals=6)
    m = read_artefact(paths.metrics, RegressionMetrics)
    assert m.task == "regression" and m.r2 > 0.8 and m.rmse_ci.lo <= m.rmse <= m.rmse_ci.hi
    assert m.baselines.mean.rmse > 4 * m.rmse and m.mape is not None
    assert m.gate.passed, m.gate.reasons
    assert set(m.gate.checks) == {"max_loss_to_linear", "beat_constant", "max_single_feature_r2"}
    assert set(m.fairness["group"].groups) == {"a", "b"} and m.fairness["group"].gate_gap is not None
    assert m.segments["group"].metric == "rmse"
    for name in ("predicted_vs_actual", "residuals"):
        assert len(json.loads((Path(paths.plots) / f"{name}.json").read_text())) == 100
        assert (Path(paths.figures) / f"{name}.png").stat().st_size > 1000
    assert set(pd.read_parquet(paths.predictions).columns) == {contract.key_column, "target", "prediction"}
    card = Path(paths.model_card).read_text()
    assert "(regression)" in card and "| rmse |" in card and "**PASSED**" in card


def test_regression_leak_is_named_and_fails_the_gate(tmp_path: Path):
    paths, contract = _build(tmp_path, "regression", leak=True)
    run(paths, contract, PARAMS, decimals=6)
    m = read_artefact(paths.metrics, RegressionMetrics)
    assert m.leakage.max_single_feature == "logy" and m.leakage.value > 0.95
    assert not m.gate.passed and any("'logy' alone" in r for r in m.gate.reasons)


def test_multiclass_writes_typed_metrics_confusion_and_reliability(tmp_path: Path):
    paths, contract = _build(tmp_path, "multiclass")
    run(paths, contract, PARAMS, decimals=6)
    m = read_artefact(paths.metrics, MulticlassMetrics)
    assert m.task == "multiclass" and set(m.per_class) == {"lo", "mid", "hi"}
    assert m.accuracy > 0.6 and m.log_loss < m.baselines.prior.log_loss
    assert set(m.gate.checks) == {"max_loss_to_linear", "beat_constant", "max_single_feature_auc"}
    assert m.leakage.max_single_feature == "x1" and m.leakage.statistic == "roc_auc_ovr"
    confusion = json.loads((Path(paths.plots) / "confusion.json").read_text())
    assert len(confusion) == 100 and {r["actual"] for r in confusion} <= {"lo", "mid", "hi"}
    assert (Path(paths.figures) / "reliability.png").is_file() and (Path(paths.plots) / "reliability.json").is_file()
    columns = set(pd.read_parquet(paths.predictions).columns)
    assert {"label", "probability__lo", "probability__mid", "probability__hi"} <= columns
    assert m.gate.passed, m.gate.reasons


def test_an_overconfident_multiclass_model_fails_against_the_baselines(tmp_path: Path):
    paths, contract = _build(tmp_path, "multiclass", forest=True)  # probabilities of 0 on some true classes
    run(paths, contract, PARAMS, decimals=6)
    m = read_artefact(paths.metrics, MulticlassMetrics)
    assert m.log_loss > m.baselines.logistic.log_loss
    assert not m.gate.checks["max_loss_to_linear"].passed and "**FAILED**" in Path(paths.model_card).read_text()


def test_a_binary_gate_key_is_refused_for_a_regression_target(tmp_path: Path):
    paths, contract = _build(tmp_path, "regression")
    with pytest.raises(ConfigError, match="policy.gate.min_roc_auc"):
        run(paths, contract, PARAMS, Policy(gate=GatePolicy(min_roc_auc=0.8)), decimals=6)
    assert not Path(paths.metrics).exists()
