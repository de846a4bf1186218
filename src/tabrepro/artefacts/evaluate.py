"""What ``evaluate`` writes: ``reports/metrics.json``, with the promotion gate's verdict (and ``package``'s record
of that verdict)."""

from __future__ import annotations

from pydantic import AliasChoices, ConfigDict, Field, model_validator

from tabrepro.artefacts._base import Record, Sha256, Share, Threshold, Verdict, YesNo

# Written ``"verdict": "pass"`` or ``"fail"`` (what `dvc metrics diff` shows as words); read as ``passed``, a bool,
# from either key (``"passed": true`` in files written before).
_VERDICT = Field(validation_alias=AliasChoices("verdict", "passed"), serialization_alias="verdict")


class GateCheck(Record):
    model_config = ConfigDict(serialize_by_alias=True)

    passed: Verdict = _VERDICT
    value: float
    limit: float


class GateVerdict(Record):
    """The promotion gate's verdict, as ``evaluate`` records it (``gate`` in ``reports/metrics.json``)."""

    model_config = ConfigDict(serialize_by_alias=True)

    passed: Verdict = _VERDICT
    reasons: tuple[str, ...] = ()
    checks: dict[str, GateCheck] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> GateVerdict:
        failed = [name for name, check in self.checks.items() if not check.passed]
        if self.passed and (failed or self.reasons):
            raise ValueError(f"gate.verdict is pass, but it records failed checks {failed} or reasons")
        return self


class PackagedGate(GateVerdict):
    """The verdict as ``package`` recorded it (``gate`` in ``reports/package.json``): plus whether a failed gate
    was overridden (``package.override_gate``) and why. ``tabrepro report`` reads every file's gate with it."""

    overridden: YesNo = False
    override_reason: str | None = None

    @model_validator(mode="after")
    def _override(self) -> PackagedGate:
        if self.overridden != bool(self.override_reason):
            raise ValueError("gate.overridden is yes exactly when gate.override_reason gives the reason")
        if self.overridden and self.passed:
            raise ValueError("gate.overridden: a gate that passed is never overridden")
        return self


class Interval(Record):
    lo: float
    hi: float


class VsBaseline(Record):
    roc_auc_diff: float
    roc_auc_diff_ci: Interval


class BootstrapSettings(Record):
    n: int = Field(ge=1)
    seed: int
    level: float = Field(gt=0, lt=1)


class SegmentColumn(Record):
    """One segment column: metrics per level (a small level holds only ``n`` and its rates), the gaps."""

    levels: dict[str, dict[str, int | float]]
    roc_auc_gap: float | None
    recall_gap: float | None
    precision_gap: float | None
    positive_rate_gap: float | None


class FairnessGroup(Record):
    n: int = Field(ge=0)
    metrics: dict[str, float | None]  # None: undefined in the group (binary ROC-AUC of a one-class group)
    ci: dict[str, Interval | None]


class FairnessColumn(Record):
    """One sensitive column: per group the task's metric and the selection / error rate, the gaps between groups
    (max - min) with CIs, and ``gate_gap``, the gap ``policy.gate.max_fairness_gap`` judges."""

    groups: dict[str, FairnessGroup]
    gaps: dict[str, float | None]
    gaps_ci: dict[str, Interval | None]
    gate_gap: float | None


class Leakage(Record):
    max_single_feature: str
    max_single_feature_auc: Share


class BaselineMetrics(Record):
    roc_auc: Share
    pr_auc: Share
    brier: Share
    log_loss: float = Field(ge=0)


class Baselines(Record):
    """The reference models scored on the same test rows (``tabrepro.evaluation.baselines``)."""

    majority: BaselineMetrics  # the train split's positive rate for everyone: ROC-AUC 0.5 by construction
    logistic: BaselineMetrics  # a plain logistic regression: what the gate compares the model with


class ScoredMetrics(Record):
    """The test split's scores as the promotion gate judges them: ``reports/metrics.json`` but its verdict and the
    model's identity (``EvaluationMetrics`` adds them)."""

    roc_auc: Share
    roc_auc_ci: Interval
    pr_auc: Share
    pr_auc_ci: Interval
    brier: Share
    brier_ci: Interval
    ece: Share
    log_loss: float = Field(ge=0)
    accuracy: Share
    f1: Share
    precision: Share
    recall: Share
    threshold: Threshold
    threshold_policy: str
    expected_cost: float
    n: int = Field(ge=1)
    positive_rate: Share
    vs_logistic: VsBaseline
    baselines: Baselines
    bootstrap: BootstrapSettings
    segments: dict[str, SegmentColumn]
    leakage: Leakage
    fairness: dict[str, FairnessColumn] = Field(default_factory=dict)  # contract `sensitive` (none: empty)


class EvaluationMetrics(ScoredMetrics):
    """``reports/metrics.json`` (a DVC metrics file: nested mappings of numbers, no lists of numbers): the scores,
    then the gate's verdict on them and the model they are of."""

    gate: GateVerdict
    model: str
    pipeline_sha256: Sha256  # the fitted pipeline evaluate scored (models/model.skops); the ONNX sha256 is package's
