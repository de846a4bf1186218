"""The data set's policy: what a model must show before it is promoted, and what each decision costs.

It travels with the data set (``conf/policy/<name>.yaml`` beside ``conf/contracts/<name>.yaml``, picked by the same
choice and composed into ``params.yaml`` under ``policy``; a data set without one gets these defaults) because
the right bars depend on the table: an honest ROC-AUC of 0.75 is good on one table, and 0.945 is honest on
another. The defaults are therefore RELATIVE (no loss to the logistic baseline beyond a tolerance,
a win over the majority class, no feature that alone gives the target away); absolute bars are opt-in per data
set. ``evaluate`` judges the gate (``tabrepro.evaluation.gate``) and prices its decisions with the cost matrix.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CostMatrix(_Strict):
    """Cost of each outcome of a decision, per row, in the data set's unit. Every entry is required."""

    false_negative: float = Field(ge=0, allow_inf_nan=False)  # a positive the model missed
    false_positive: float = Field(ge=0, allow_inf_nan=False)  # acting on a row that is negative (a false alarm)
    true_positive: float = Field(ge=0, allow_inf_nan=False)  # acting on a real positive (the action's own cost)
    true_negative: float = Field(ge=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _errors_cost_more(self) -> CostMatrix:
        if self.false_negative <= self.true_positive and self.false_positive <= self.true_negative:
            raise ValueError("errors must cost more than correct decisions (false_negative > true_positive)")
        return self


class GatePolicy(_Strict):
    """The promotion gate: what a model must show on the test split before ``package`` builds it.

    ``None`` (``False`` for ``beat_majority``) switches a criterion off. The first three are on by default and
    relative to the table; the rest are absolute bars a data set opts into.
    """

    # Refuse when the paired bootstrap CI of (model - logistic baseline) ROC-AUC lies wholly below -tolerance:
    # the data show the model loses by more than this. A tie, or a loss within the noise, passes.
    max_loss_to_logistic: float | None = Field(default=0.01, ge=0, le=1)
    # The lower end of the test ROC-AUC's CI must be above the majority-class baseline's ROC-AUC (0.5).
    beat_majority: bool = True
    # Leakage alarm: no feature ALONE may rank the target this well (direction-free ROC-AUC on test).
    max_single_feature_auc: float | None = Field(default=0.95, ge=0.5, le=1)
    # Opt-in absolute bars.
    min_roc_auc: float | None = Field(default=None, ge=0, le=1)
    min_gain_over_baseline: float | None = Field(default=None, ge=-1, le=1)  # on the point estimate
    max_roc_auc: float | None = Field(default=None, ge=0, le=1)  # leakage alarm on the whole model
    max_ece: float | None = Field(default=None, gt=0, le=1)
    max_segment_roc_auc_gap: float | None = Field(default=None, gt=0, le=1)
    # Regression and multiclass (relative defaults, as binary's): refuse when the paired CI of (model - linear
    # baseline) RMSE (regression, vs ridge) or log-loss (multiclass, vs multinomial logistic) lies wholly above
    # +tolerance x the baseline's value: the model loses to the linear model by more than that fraction.
    max_loss_to_linear: float | None = Field(default=0.01, ge=0, le=1)
    # ... and the upper end of that CI against the constant baseline (mean predictor / class prior) must be < 0.
    beat_constant: bool = True
    # Regression leakage alarm: no feature alone may explain this share of the target's variance (R² on test).
    max_single_feature_r2: float | None = Field(default=0.9, gt=0, le=1)
    # Every task, opt-in: the largest gap between groups of a sensitive column (contract `sensitive`): the
    # selection rate's (classification; the largest over classes for multiclass) or the MAE's (regression, in the
    # target's unit).
    max_fairness_gap: float | None = Field(default=None, ge=0)


# The criteria each task judges (max_single_feature_auc is the macro one-vs-rest ROC-AUC for multiclass).
GATE_KEYS: dict[str, frozenset[str]] = {
    "binary": frozenset(
        {
            "max_loss_to_logistic",
            "beat_majority",
            "max_single_feature_auc",
            "min_roc_auc",
            "min_gain_over_baseline",
            "max_roc_auc",
            "max_ece",
            "max_segment_roc_auc_gap",
            "max_fairness_gap",
        }
    ),
    "multiclass": frozenset(
        {"max_loss_to_linear", "beat_constant", "max_single_feature_auc", "max_ece", "max_fairness_gap"}
    ),
    "regression": frozenset({"max_loss_to_linear", "beat_constant", "max_single_feature_r2", "max_fairness_gap"}),
}


def check_gate_keys(gate: GatePolicy, task: str) -> None:
    """A key set in the policy that the task does not judge is refused, naming it (``policy.gate.<key>``);
    switching one off (null, false) is harmless and passes."""
    on = {k for k in gate.model_fields_set if getattr(gate, k) not in (None, False)}
    stray = sorted(on - GATE_KEYS[task])
    if stray:
        keys = ", ".join(f"policy.gate.{k}" for k in stray)
        raise ValueError(f"{keys}: not a criterion of a {task} target; it judges {', '.join(sorted(GATE_KEYS[task]))}")


# Symmetric costs: the expected cost is the error rate. A data set with a unit (money, hours) sets its own.
NEUTRAL_COST = CostMatrix(false_negative=1, false_positive=1, true_positive=0, true_negative=0)


class Policy(_Strict):
    """The data set's promotion gate and cost matrix (the ``policy`` params section); every key has a default."""

    gate: GatePolicy = GatePolicy()
    cost: CostMatrix = NEUTRAL_COST
