"""Live performance per window, model version and role: the task's metrics, each with a bootstrap CI, and the
label coverage (the share of the records a model scored in the window that have an on-time label).

The metric table is keyed by task: binary today; a regression or multiclass task adds its own row of metrics
and nothing else changes (the report stores metrics by name).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict
from sklearn.metrics import log_loss, roc_auc_score

from tabrepro.evaluation.metrics import expected_calibration_error
from tabrepro.evaluation.uncertainty import bootstrap_ci
from tabrepro.outcomes.join import GROUP, JoinResult
from tabrepro.outcomes.settings import OutcomesParams


@dataclass(frozen=True)
class MetricSpec:
    """A metric of live performance: how to compute it and which way is better."""

    name: str
    compute: Callable[..., float]
    higher_is_better: bool


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    return float(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1]))


def metric_table(task: str, *, ece_bins: int) -> tuple[MetricSpec, ...]:
    """The metrics of ``task``; only "binary" exists today."""
    if task != "binary":
        raise ValueError(f"no live metrics for task {task!r} yet")
    return (
        MetricSpec("roc_auc", lambda y, p: float(roc_auc_score(y, p)), higher_is_better=True),
        MetricSpec("log_loss", _log_loss, higher_is_better=False),
        MetricSpec("ece", partial(expected_calibration_error, bins=ece_bins), higher_is_better=False),
    )


class MetricValue(BaseModel):
    """A metric on one window's labels, with its percentile bootstrap CI; None where it is undefined."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float | None
    lo: float | None
    hi: float | None


class WindowPerformance(BaseModel):
    """One model (version and role) in one window."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window: str
    model_version: str
    role: str
    predicted: int
    labelled: int
    late: int
    coverage: float
    positives: int
    metrics: dict[str, MetricValue]


def measure(result: JoinResult, params: OutcomesParams, *, task: str = "binary") -> list[WindowPerformance]:
    """Every (window, model version, role) that scored records, in time order."""
    specs = metric_table(task, ece_bins=params.ece_bins)
    groups = {key: part for key, part in result.joined.groupby(GROUP, sort=False)}
    empty = result.joined.iloc[:0]
    out = []
    for row in result.predicted.sort_values(GROUP).itertuples(index=False):
        mine = groups.get((row.window, row.model_version, row.role), empty)
        scored = mine[mine["status"] == "on_time"]
        y, p = scored["y"].to_numpy(dtype=int), scored["probability"].to_numpy(dtype=float)
        out.append(
            WindowPerformance(
                window=row.window.isoformat(),
                model_version=row.model_version,
                role=row.role,
                predicted=int(row.predicted),
                labelled=len(scored),
                late=int((mine["status"] == "late").sum()),
                coverage=len(scored) / int(row.predicted),
                positives=int(y.sum()),
                metrics=score_metrics(y, p, specs, n=params.bootstrap, seed=params.seed, level=1 - params.alpha),
            )
        )
    return out


def score_metrics(
    y: np.ndarray, p: np.ndarray, specs: tuple[MetricSpec, ...], *, n: int, seed: int, level: float
) -> dict[str, MetricValue]:
    """Each metric and its CI; undefined (None) unless both classes are present."""
    if len(y) < 2 or y.min() == y.max():
        return {s.name: MetricValue(value=None, lo=None, hi=None) for s in specs}
    metrics = {s.name: s.compute for s in specs}
    ci = bootstrap_ci(y, {name: p for name in metrics}, metrics, n=n, seed=seed, level=level)
    return {name: MetricValue(value=fn(y, p), lo=ci[name]["lo"], hi=ci[name]["hi"]) for name, fn in metrics.items()}


def pooled(frame: pd.DataFrame, *, model_version: str, role: str) -> pd.DataFrame:
    """The on-time labelled predictions of one model over every window."""
    keep = (frame["model_version"] == model_version) & (frame["role"] == role) & (frame["status"] == "on_time")
    return frame[keep]
