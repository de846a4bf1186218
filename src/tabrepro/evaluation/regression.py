"""Regression metrics, baselines and CIs: pure functions of the target and the predictions.

RMSE, MAE, R² and MAPE (only when the test target is never 0: it divides by it). Baselines on the same rows: the
train split's mean and median for everyone, and an untuned ridge regression (the linear model the gate compares
the model with). CIs are seeded percentile bootstraps; the model and each baseline share every resample, so the
paired differences (model minus baseline) have CIs of their own.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import mean_absolute_error, mean_absolute_percentage_error, r2_score, root_mean_squared_error
from sklearn.pipeline import Pipeline

from tabrepro.config.params import BootstrapParams
from tabrepro.evaluation.uncertainty import Metric, ci_over, paired_difference, resample_rows
from tabrepro.training.modeling import build_model

# lower is better for every metric but R² (the direction `tabrepro report` and the gate need)
METRICS: dict[str, Metric] = {
    "rmse": lambda y, p: float(root_mean_squared_error(y, p)),
    "mae": lambda y, p: float(mean_absolute_error(y, p)),
    "r2": lambda y, p: float(r2_score(y, p)),
}
HIGHER_IS_BETTER = {"rmse": False, "mae": False, "r2": True, "mape": False}


def regression_metrics(y_true: np.ndarray, pred: np.ndarray) -> dict[str, float | None]:
    """RMSE, MAE, R² and MAPE (None when some target is 0) of ``pred`` against ``y_true``."""
    if len(y_true) != len(pred) or len(y_true) < 2:
        raise ValueError(f"need equal lengths of at least 2; got {len(y_true)} targets, {len(pred)} predictions")
    point: dict[str, float | None] = {name: metric(y_true, pred) for name, metric in METRICS.items()}
    point["mape"] = float(mean_absolute_percentage_error(y_true, pred)) if np.all(y_true != 0) else None
    return point


def build_ridge_baseline() -> Pipeline:
    """The UNFITTED linear baseline: the ridge family's pipeline (scaler, ridge with the default alpha, Cholesky)."""
    model = build_model("ridge", {}, task="regression", seed=0)
    assert isinstance(model, Pipeline)
    return model


def regression_baselines(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> dict[str, np.ndarray]:
    """Predictions of each baseline on ``x_test``, fitted on the train split only."""
    ridge = build_ridge_baseline().fit(x_train, y_train)
    return {
        "mean": np.full(len(x_test), float(np.mean(y_train))),
        "median": np.full(len(x_test), float(np.median(y_train))),
        "ridge": np.asarray(ridge.predict(x_test), dtype=float),
    }


def score_regression(
    y_test: np.ndarray, pred: np.ndarray, baselines: dict[str, np.ndarray], boot: BootstrapParams
) -> dict[str, Any]:
    """The model's metrics with CIs, each baseline's metrics, and the paired (model - ridge) and (model - mean)
    RMSE differences with their CIs, all on the same resamples."""
    point = regression_metrics(y_test, pred)
    scores = {name: pred for name in METRICS}
    diffs = {f"rmse_diff_{b}": np.column_stack([pred, baselines[b]]) for b in ("ridge", "mean")}
    tests = {**METRICS, **dict.fromkeys(diffs, paired_difference(METRICS["rmse"]))}
    resamples = resample_rows(y_test, n=boot.n, seed=boot.seed, keep=lambda y: bool(y.min() != y.max()))
    intervals = ci_over(resamples, y_test, {**scores, **diffs}, tests, level=boot.level)
    rmse = METRICS["rmse"]
    return {
        **{k: v for k, v in point.items()},
        **{f"{name}_ci": intervals[name] for name in METRICS},
        "n": len(y_test),
        "target_mean": float(np.mean(y_test)),
        "vs_baselines": {
            b: {
                "rmse_diff": rmse(y_test, pred) - rmse(y_test, baselines[b]),
                "rmse_diff_ci": intervals[f"rmse_diff_{b}"],
            }
            for b in ("ridge", "mean")
        },
        "baselines": {name: regression_metrics(y_test, p) for name, p in baselines.items()},
        "bootstrap": {"n": boot.n, "seed": boot.seed, "level": boot.level},
    }
