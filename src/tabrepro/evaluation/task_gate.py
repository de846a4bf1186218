"""The promotion gate of a regression or a multiclass model: the relative defaults binary has, per task.

- ``max_loss_to_linear``: the paired CI of (model - linear baseline) RMSE (regression, vs ridge) or log-loss
  (multiclass, vs multinomial logistic), at its favourable (lower) end, divided by the baseline's value, must
  not exceed the tolerance: a loss within the noise passes.
- ``beat_constant``: the upper end of the CI of (model - constant baseline) (mean predictor / class prior) must
  be below 0.
- the leakage alarm: ``max_single_feature_r2`` (regression) or ``max_single_feature_auc`` (multiclass: macro
  one-vs-rest ROC-AUC of one feature alone); ``max_ece`` (multiclass, top-label) and ``max_fairness_gap``.
"""

from __future__ import annotations

import operator

from tabrepro.artefacts import GateVerdict, MulticlassScores, RegressionScores
from tabrepro.config.precision import DEFAULT_DECIMALS
from tabrepro.contract.policy import GatePolicy
from tabrepro.evaluation.gate import Criteria, fairness_criterion, verdict_of


def judge_task_gate(
    metrics: RegressionScores | MulticlassScores, gate: GatePolicy, *, decimals: int = DEFAULT_DECIMALS
) -> GateVerdict:
    """The verdict on ``metrics`` (as written, rounded) of every criterion of its task switched on in ``gate``; a
    ratio of two metrics is judged rounded to ``decimals`` places."""
    if isinstance(metrics, RegressionScores):
        return verdict_of(_regression(metrics, gate), decimals=decimals)
    return verdict_of(_multiclass(metrics, gate), decimals=decimals)


def _relative(
    level: int,
    loss_ci_lo: float,
    linear: float,
    gain_ci_hi: float,
    gate: GatePolicy,
    *,
    metric: str,
    of: tuple[str, str],
) -> Criteria:
    """The relative criteria every task shares: no loss to the linear baseline beyond the tolerance (the paired
    CI's favourable end as a share of the baseline's ``metric``), and a win over the constant baseline (the CI's
    upper end below 0); ``of`` names the two baselines."""
    return {
        "max_loss_to_linear": (
            loss_ci_lo / linear if linear > 0 else None,
            operator.le,
            gate.max_loss_to_linear,
            f"the model's {metric} loss to {of[0]} (share of its {metric}) at the favourable end of the {level} % "
            "CI of the paired difference",
        ),
        "beat_constant": (
            gain_ci_hi,
            operator.lt,
            0.0 if gate.beat_constant else None,
            f"the upper end of the {level} % CI of (model - {of[1]}) {metric}",
        ),
    }


def _regression(m: RegressionScores, gate: GatePolicy) -> Criteria:
    ridge, mean, leak = m.vs_baselines.ridge, m.vs_baselines.mean, m.leakage
    relative = (ridge.rmse_diff_ci.lo, m.baselines.ridge.rmse, mean.rmse_diff_ci.hi)
    return {
        **_relative(_level(m), *relative, gate, metric="RMSE", of=("the ridge baseline", "mean predictor")),
        "max_single_feature_r2": (
            leak.value,
            operator.le,
            gate.max_single_feature_r2,
            f"R² of feature {leak.max_single_feature!r} alone (leakage alarm)",
        ),
        "max_fairness_gap": fairness_criterion(m.fairness, gate),
    }


def _multiclass(m: MulticlassScores, gate: GatePolicy) -> Criteria:
    logistic, prior, leak = m.vs_baselines.logistic, m.vs_baselines.prior, m.leakage
    relative = (logistic.log_loss_diff_ci.lo, m.baselines.logistic.log_loss, prior.log_loss_diff_ci.hi)
    of = ("the multinomial logistic baseline", "class prior")
    return {
        **_relative(_level(m), *relative, gate, metric="log-loss", of=of),
        "max_single_feature_auc": (
            leak.value,
            operator.le,
            gate.max_single_feature_auc,
            f"macro one-vs-rest ROC-AUC of feature {leak.max_single_feature!r} alone (leakage alarm)",
        ),
        "max_ece": (m.ece, operator.le, gate.max_ece, "top-label expected calibration error"),
        "max_fairness_gap": fairness_criterion(m.fairness, gate),
    }


def _level(m: RegressionScores | MulticlassScores) -> int:
    return round(m.bootstrap.level * 100)
