"""What ``evaluate`` writes for a multiclass or a regression target (``reports/metrics.json``), and the fairness
slices every task records. The binary layout is ``tabrepro.artefacts.evaluate``'s, unchanged but for ``fairness``.

Directions, for whoever compares two files (``tabrepro report``): lower is better for ``rmse``, ``mae``, ``mape``,
``log_loss`` and ``ece``; higher for ``r2``, ``accuracy``, ``f1_*`` and ``roc_auc_ovr`` (``METRIC_DIRECTIONS``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tabrepro.artefacts._base import Record, Sha256, Share
from tabrepro.artefacts.evaluate import BootstrapSettings, FairnessColumn, GateVerdict, Interval

# +1: higher is better, -1: lower is better (the headline metrics of every task, binary's included)
METRIC_DIRECTIONS: dict[str, int] = {
    **dict.fromkeys(("roc_auc", "pr_auc", "accuracy", "f1", "f1_macro", "f1_weighted", "roc_auc_ovr", "r2"), 1),
    **dict.fromkeys(("brier", "log_loss", "ece", "rmse", "mae", "mape", "expected_cost"), -1),
}


class TaskSegmentColumn(Record):
    """One segment column: the task's metrics per level (a small level holds only ``n``), the headline's gap."""

    levels: dict[str, dict[str, int | float]]
    metric: str
    gap: float | None


class TaskLeakage(Record):
    """The feature that alone explains the target best: R² (regression) or macro one-vs-rest ROC-AUC
    (multiclass) of that feature alone on test."""

    max_single_feature: str
    statistic: Literal["r2", "roc_auc_ovr"]
    value: float


class RmseDiff(Record):
    rmse_diff: float  # model minus baseline, same rows: negative is better
    rmse_diff_ci: Interval


class RegressionPoint(Record):
    rmse: float = Field(ge=0)
    mae: float = Field(ge=0)
    r2: float
    mape: float | None = Field(ge=0)  # None: the test target holds a 0


class RegressionBaselines(Record):
    mean: RegressionPoint
    median: RegressionPoint
    ridge: RegressionPoint  # the linear model the gate compares the model with


class RegressionVs(Record):
    ridge: RmseDiff
    mean: RmseDiff


class RegressionScores(RegressionPoint):
    """A regression model's test scores as the gate judges them."""

    task: Literal["regression"] = "regression"
    rmse_ci: Interval
    mae_ci: Interval
    r2_ci: Interval
    n: int = Field(ge=2)
    target_mean: float
    vs_baselines: RegressionVs
    baselines: RegressionBaselines
    bootstrap: BootstrapSettings
    segments: dict[str, TaskSegmentColumn]
    leakage: TaskLeakage
    fairness: dict[str, FairnessColumn]


class ClassScores(Record):
    precision: Share
    recall: Share
    predicted_rate: Share


class MulticlassPoint(Record):
    log_loss: float = Field(ge=0)
    accuracy: Share
    f1_macro: Share
    f1_weighted: Share
    roc_auc_ovr: Share


class LogLossDiff(Record):
    log_loss_diff: float  # model minus baseline, same rows: negative is better
    log_loss_diff_ci: Interval


class MulticlassBaselines(Record):
    prior: MulticlassPoint
    logistic: MulticlassPoint  # the linear model the gate compares the model with


class MulticlassVs(Record):
    logistic: LogLossDiff
    prior: LogLossDiff


class MulticlassScores(MulticlassPoint):
    """A multiclass model's test scores as the gate judges them (labels by argmax: no threshold)."""

    task: Literal["multiclass"] = "multiclass"
    log_loss_ci: Interval
    accuracy_ci: Interval
    f1_macro_ci: Interval
    f1_weighted_ci: Interval
    roc_auc_ovr_ci: Interval
    ece: Share  # top-label
    n: int = Field(ge=1)
    per_class: dict[str, ClassScores]
    vs_baselines: MulticlassVs
    baselines: MulticlassBaselines
    bootstrap: BootstrapSettings
    segments: dict[str, TaskSegmentColumn]
    leakage: TaskLeakage
    fairness: dict[str, FairnessColumn]


class RegressionMetrics(RegressionScores):
    """``reports/metrics.json`` of a regression target: the scores, the gate's verdict, the model."""

    gate: GateVerdict
    model: str
    pipeline_sha256: Sha256  # the fitted pipeline evaluate scored (models/model.skops); the ONNX sha256 is package's


class MulticlassMetrics(MulticlassScores):
    """``reports/metrics.json`` of a multiclass target: the scores, the gate's verdict, the model."""

    gate: GateVerdict
    model: str
    pipeline_sha256: Sha256  # the fitted pipeline evaluate scored (models/model.skops); the ONNX sha256 is package's
