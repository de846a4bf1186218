"""Fairness slices: per group of each sensitive column (contract ``sensitive``), the task's metric and the
selection or error rate, with bootstrap CIs, and the largest gap between groups.

fairlearn's ``MetricFrame`` computes the per-group values and the gaps (``difference(method="between_groups")``).
Its own bootstrap (``n_boot``) re-runs the whole frame per resample (about 40 s per column on Telco), so the CIs
come from the project's seeded bootstrap: the same row resamples for every group, metric and gap.

- binary: ``roc_auc`` (None in a group holding one class) and ``selection_rate`` (predicted positive at the
  threshold);
- multiclass: ``log_loss`` and ``predicted_rate_<class>`` per class (argmax);
- regression: ``rmse`` and ``mae`` (the error rate).

``gate_gap`` names the gap the policy's ``max_fairness_gap`` judges: the selection rate's (the largest over classes
for multiclass), or the MAE's (in the target's unit) for regression.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame
from sklearn.metrics import mean_absolute_error, roc_auc_score, root_mean_squared_error

from tabrepro.config.params import BootstrapParams
from tabrepro.evaluation.multiclass import multiclass_log_loss
from tabrepro.evaluation.segments import level_name
from tabrepro.evaluation.uncertainty import percentile_interval, resample_rows

RowMetric = Callable[[np.ndarray, np.ndarray], float]  # (target, row indices) -> value


def slice_metrics(output: np.ndarray, *, task: str, threshold: float, classes: Sequence[str]) -> dict[str, RowMetric]:
    """The per-group metrics of ``task`` as functions of (target, row indices into ``output``)."""
    if task == "regression":
        return {
            "rmse": lambda y, i: float(root_mean_squared_error(y, output[i])),
            "mae": lambda y, i: float(mean_absolute_error(y, output[i])),
        }
    if task == "multiclass":
        rates = {f"predicted_rate_{c}": _predicted_rate(output, k) for k, c in enumerate(classes)}
        return {"log_loss": lambda y, i: multiclass_log_loss(y, output[i], n_classes=len(classes)), **rates}
    return {
        "roc_auc": lambda y, i: float(roc_auc_score(y, output[i])) if len(np.unique(y)) == 2 else float("nan"),
        "selection_rate": lambda y, i: float(np.mean(output[i] >= threshold)),
    }


def _predicted_rate(output: np.ndarray, k: int) -> RowMetric:
    return lambda y, i: float(np.mean(output[i].argmax(axis=1) == k))


def gate_gap(task: str, gaps: dict[str, float | None]) -> float | None:
    """The gap ``max_fairness_gap`` judges (see the module's doc)."""
    if task == "regression":
        return gaps.get("mae")
    rates = [v for k, v in gaps.items() if (k == "selection_rate" or k.startswith("predicted_rate_")) and v is not None]
    return max(rates) if rates else None


def fairness_slices(
    frame: pd.DataFrame,
    y: np.ndarray,
    output: np.ndarray,
    *,
    task: str,
    columns: Sequence[str],
    classes: Sequence[str] = (),
    threshold: float = 0.5,
    boot: BootstrapParams,
) -> dict[str, Any]:
    """``{column: {"groups": {level: {"n", "metrics", "ci"}}, "gaps": {metric: max - min}, "gaps_ci": ...,
    "gate_gap": value}}`` on the rows of ``frame`` (one per entry of ``y`` and ``output``)."""
    if not len(frame) == len(y) == len(output):
        raise ValueError(f"need one row per output: {len(frame)} rows, {len(y)} targets, {len(output)} outputs")
    metrics = slice_metrics(output, task=task, threshold=threshold, classes=classes)
    rows = np.arange(len(y))
    result: dict[str, Any] = {}
    for column in columns:
        keys = frame[column].map(level_name).to_numpy()
        frame_ = MetricFrame(metrics=metrics, y_true=y, y_pred=rows, sensitive_features=pd.Series(keys, name=column))
        by_group, gaps = frame_.by_group, frame_.difference(method="between_groups")
        ci, gaps_ci = _group_cis(y, keys, metrics, boot)
        groups = {
            str(level): {
                "n": int(np.sum(keys == level)),
                "metrics": {m: _number(by_group.loc[level, m]) for m in metrics},
                "ci": ci[str(level)],
            }
            for level in by_group.index
        }
        gap_values = {m: _number(gaps[m]) for m in metrics}
        result[column] = {
            "groups": groups,
            "gaps": gap_values,
            "gaps_ci": gaps_ci,
            "gate_gap": gate_gap(task, gap_values),
        }
    return result


def _group_cis(
    y: np.ndarray, keys: np.ndarray, metrics: dict[str, RowMetric], boot: BootstrapParams
) -> tuple[dict[str, dict[str, dict[str, float] | None]], dict[str, dict[str, float] | None]]:
    """Per-group CIs of each metric and CIs of each gap, over the same row resamples."""
    levels = sorted(set(keys))
    samples = {(g, m): [] for g in levels for m in metrics}  # type: dict[tuple[str, str], list[float]]
    for idx in resample_rows(y, n=boot.n, seed=boot.seed, keep=lambda _: True):
        for g in levels:
            members = idx[keys[idx] == g]
            for m, f in metrics.items():
                samples[g, m].append(f(y[members], members) if len(members) else float("nan"))
    ci = {g: {m: _interval(samples[g, m], boot.level) for m in metrics} for g in levels}
    stacked = {m: np.array([samples[g, m] for g in levels]) for m in metrics}
    with warnings.catch_warnings():  # a resample where a group's metric is undefined everywhere: no gap
        warnings.simplefilter("ignore", RuntimeWarning)
        spread = {m: np.nanmax(v, axis=0) - np.nanmin(v, axis=0) for m, v in stacked.items()}
    gaps = {m: _interval(list(v), boot.level) for m, v in spread.items()}
    return ci, gaps


def _interval(values: list[float], level: float) -> dict[str, float] | None:
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    return percentile_interval(finite, level=level) if finite.size else None


def _number(value: Any) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None
