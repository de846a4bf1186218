"""The promotion gate: the data set's criteria (``policy.gate``, ``conf/policy/<data set>.yaml``), judged on the
evaluated metrics, enforced by ``package``.

``evaluate`` records the verdict (``GateVerdict``: ``passed``, the reasons, every check with its value and limit)
as ``gate`` in ``reports/metrics.json``; ``package`` refuses to build a model whose gate failed, naming the
criterion, unless ``package.override_gate`` gives a reason (logged, and recorded with the package as a
``PackagedGate``: the same verdict plus ``overridden`` and ``override_reason``).
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable, Mapping

from tabrepro.artefacts import FairnessColumn, GateCheck, GateVerdict, PackagedGate, ScoredMetrics
from tabrepro.config.precision import DEFAULT_DECIMALS, rounded
from tabrepro.contract.policy import GatePolicy
from tabrepro.errors import TabreproError

log = logging.getLogger(__name__)


class GateError(TabreproError, RuntimeError):
    """The model failed the promotion gate and no override was given."""


def judge_gate(metrics: ScoredMetrics, gate: GatePolicy) -> GateVerdict:
    """The verdict on ``metrics`` (evaluate's, rounded as written) of every criterion switched on in ``gate``."""
    return verdict_of(_criteria(metrics, gate))


Compare = Callable[[float, float], bool]
_SIGNS: dict[Compare, str] = {operator.ge: ">=", operator.le: "<=", operator.gt: ">", operator.lt: "<"}
Criteria = dict[str, tuple[float | None, Compare, float | None, str]]


def verdict_of(criteria: Criteria, *, decimals: int = DEFAULT_DECIMALS) -> GateVerdict:
    """The verdict of ``criteria`` (criterion -> observed value, comparison that must hold, limit, label): a
    criterion with no limit (off) or no value (nothing to judge) is skipped. A value computed from the written
    metrics (a ratio) is judged and written rounded to ``decimals`` places, as every metric is."""
    checks: dict[str, GateCheck] = {}
    reasons: list[str] = []
    for criterion, (observed, compare, limit, label) in criteria.items():
        if limit is None or observed is None:
            continue
        value = rounded(observed, decimals)
        passed = bool(compare(value, limit))
        checks[criterion] = GateCheck(passed=passed, value=value, limit=limit)
        if not passed:
            reasons.append(f"{criterion}: {label} is {value:.4f}, must be {_SIGNS[compare]} {limit}")
    return GateVerdict(passed=not reasons, reasons=tuple(reasons), checks=checks)


def _criteria(metrics: ScoredMetrics, gate: GatePolicy) -> Criteria:
    """criterion -> (observed value (None: nothing to judge), comparison that must hold, the limit (None: off),
    what the value is)."""
    gaps = [s.roc_auc_gap for s in metrics.segments.values() if s.roc_auc_gap is not None]
    leak, vs, level = metrics.leakage, metrics.vs_logistic, round(metrics.bootstrap.level * 100)
    majority = metrics.baselines.majority.roc_auc
    return {
        "min_roc_auc": (metrics.roc_auc, operator.ge, gate.min_roc_auc, "test ROC-AUC"),
        "min_gain_over_baseline": (
            vs.roc_auc_diff,
            operator.ge,
            gate.min_gain_over_baseline,
            "ROC-AUC minus the logistic baseline's",
        ),
        "max_loss_to_logistic": (
            -vs.roc_auc_diff_ci.hi,
            operator.le,
            gate.max_loss_to_logistic,
            f"the model's ROC-AUC loss to the logistic baseline at the favourable end of the {level} % CI of the "
            "paired difference",
        ),
        "beat_majority": (
            metrics.roc_auc_ci.lo,
            operator.gt,
            majority if gate.beat_majority else None,
            f"the lower end of the test ROC-AUC's {level} % CI (vs the majority-class baseline's)",
        ),
        "max_roc_auc": (metrics.roc_auc, operator.le, gate.max_roc_auc, "test ROC-AUC (leakage alarm: too high)"),
        "max_single_feature_auc": (
            leak.max_single_feature_auc,
            operator.le,
            gate.max_single_feature_auc,
            f"ROC-AUC of feature {leak.max_single_feature!r} alone (leakage alarm)",
        ),
        "max_ece": (metrics.ece, operator.le, gate.max_ece, "expected calibration error"),
        "max_segment_roc_auc_gap": (
            max(gaps) if gaps else None,
            operator.le,
            gate.max_segment_roc_auc_gap,
            "largest ROC-AUC gap between segments",
        ),
        "max_fairness_gap": fairness_criterion(metrics.fairness, gate),
    }


def fairness_criterion(
    fairness: Mapping[str, FairnessColumn], gate: GatePolicy
) -> tuple[float | None, Compare, float | None, str]:
    """The largest ``gate_gap`` over the sensitive columns against ``max_fairness_gap`` (every task)."""
    gaps = {c: f.gate_gap for c, f in fairness.items() if f.gate_gap is not None}
    widest = max(gaps, key=gaps.__getitem__) if gaps else None
    label = f"largest gap between groups of {widest!r} (selection or error rate)"
    return (gaps[widest] if widest else None, operator.le, gate.max_fairness_gap, label)


def enforce_gate(verdict: GateVerdict, *, override: str | None, source: str) -> PackagedGate:
    """Raise GateError unless ``verdict`` passed or ``override`` gives a reason; return what package records."""
    if verdict.passed:
        return PackagedGate(passed=True, reasons=verdict.reasons, checks=verdict.checks)
    failed = "\n  ".join(verdict.reasons or ["(no reason recorded)"])
    if override is None:
        leak = [n for n, c in verdict.checks.items() if n.startswith("max_single_feature") and not c.passed]
        hint = (
            "A feature that alone explains the target is usually the target in disguise (known only after the "
            "fact): leave it out by deleting its line from the data set's contract (conf/contracts/<data set>.yaml). "
            if leak
            else ""
        )
        raise GateError(
            f"the model failed the promotion gate ({source}), so it is not packaged:\n  {failed}\n{hint}"
            "Improve the model, change the data set's policy (policy.gate in conf/policy/<data set>.yaml), or set "
            "package.override_gate to a reason to package it anyway."
        )
    log.warning("PROMOTION GATE OVERRIDDEN (package.override_gate: %r); failed criteria:\n  %s", override, failed)
    return PackagedGate(
        passed=False, reasons=verdict.reasons, checks=verdict.checks, overridden=True, override_reason=override
    )
