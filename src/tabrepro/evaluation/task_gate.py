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
from tabrepro.contract.policy import GatePolicy
from tabrepro.evaluation.gate import Criteria, fairness_criterion, verdict_of


def judge_task_gate(metrics: RegressionScores | MulticlassScores, gate: GatePolicy) -> GateVerdict:
    """The verdict on ``metrics`` (as written, rounded) of every criterion of its task switched on in ``gate``."""
    if isinstance(metrics, RegressionScores):
        return verdict_of(_regression(metrics, gate))
    return verdict_of(_multiclass(metrics, gate))


def _regression(m: RegressionScores, gate: GatePolicy) -> Criteria:
    level = round(m.bootstrap.level * 100)
    ridge, mean = m.vs_baselines.ridge, m.vs_baselines.mean
    leak = m.leakage
    return {
        "max_loss_to_linear": (
            ridge.rmse_diff_ci.lo / m.baselines.ridge.rmse if m.baselines.ridge.rmse > 0 else None,
            operator.le,
            gate.max_loss_to_linear,
            f"the model's RMSE loss to the ridge baseline (share of its RMSE) at the favourable end of the {level} % "
            "CI of the paired difference",
        ),
        "beat_constant": (
            mean.rmse_diff_ci.hi,
            operator.lt,
            0.0 if gate.beat_constant else None,
            f"the upper end of the {level} % CI of (model - mean predictor) RMSE",
        ),
        "max_single_feature_r2": (
            leak.value,
            operator.le,
            gate.max_single_feature_r2,
            f"R² of feature {leak.max_single_feature!r} alone (leakage alarm)",
        ),
        "max_fairness_gap": fairness_criterion(m.fairness, gate),
    }


def _multiclass(m: MulticlassScores, gate: GatePolicy) -> Criteria:
    level = round(m.bootstrap.level * 100)
    logistic, prior = m.vs_baselines.logistic, m.vs_baselines.prior
    leak = m.leakage
    return {
        "max_loss_to_linear": (
            logistic.log_loss_diff_ci.lo / m.baselines.logistic.log_loss if m.baselines.logistic.log_loss > 0 else None,
            operator.le,
            gate.max_loss_to_linear,
            f"the model's log-loss loss to the multinomial logistic baseline (share of its log-loss) at the favourable "
            f"end of the {level} % CI of the paired difference",
        ),
        "beat_constant": (
            prior.log_loss_diff_ci.hi,
            operator.lt,
            0.0 if gate.beat_constant else None,
            f"the upper end of the {level} % CI of (model - class prior) log-loss",
        ),
        "max_single_feature_auc": (
            leak.value,
            operator.le,
            gate.max_single_feature_auc,
            f"macro one-vs-rest ROC-AUC of feature {leak.max_single_feature!r} alone (leakage alarm)",
        ),
        "max_ece": (m.ece, operator.le, gate.max_ece, "top-label expected calibration error"),
        "max_fairness_gap": fairness_criterion(m.fairness, gate),
    }
