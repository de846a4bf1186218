"""The promotion gate: criteria from params, judged on the evaluated metrics, enforced by ``package``.

``evaluate`` records the verdict (``GateVerdict``: ``passed``, the reasons, every check with its value and limit)
as ``gate`` in ``reports/metrics.json``; ``package`` refuses to build a model whose gate failed, naming the
criterion, unless ``package.override_gate`` gives a reason (logged, and recorded with the package as a
``PackagedGate``: the same verdict plus ``overridden`` and ``override_reason``).
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Mapping
from typing import Any

from tabrepro.artefacts import GateCheck, GateVerdict, PackagedGate
from tabrepro.config.params import GateParams
from tabrepro.errors import TabreproError

log = logging.getLogger(__name__)


class GateError(TabreproError, RuntimeError):
    """The model failed the promotion gate and no override was given."""


def judge_gate(metrics: Mapping[str, Any], gate: GateParams) -> GateVerdict:
    """The verdict on ``metrics`` (evaluate's, being built) of every criterion switched on in ``gate``."""
    observed = _observed(metrics)
    checks: dict[str, GateCheck] = {}
    reasons: list[str] = []
    for criterion, (value, compare, label) in observed.items():
        limit = getattr(gate, criterion)
        if limit is None or value is None:
            continue
        passed = bool(compare(value, limit))
        checks[criterion] = GateCheck(passed=passed, value=round(float(value), 6), limit=limit)
        if not passed:
            sign = ">=" if compare is operator.ge else "<="
            reasons.append(f"{criterion}: {label} is {value:.4f}, must be {sign} {limit}")
    return GateVerdict(passed=not reasons, reasons=tuple(reasons), checks=checks)


def _observed(metrics: Mapping[str, Any]) -> dict[str, tuple[float | None, Any, str]]:
    """criterion -> (observed value, comparison that must hold against the limit, what the value is)."""
    gaps = [s["roc_auc_gap"] for s in metrics.get("segments", {}).values() if s.get("roc_auc_gap") is not None]
    leak = metrics.get("leakage", {})
    return {
        "min_roc_auc": (metrics["roc_auc"], operator.ge, "test ROC-AUC"),
        "min_gain_over_baseline": (
            metrics["vs_logistic"]["roc_auc_diff"],
            operator.ge,
            "ROC-AUC minus the logistic baseline's",
        ),
        "max_roc_auc": (metrics["roc_auc"], operator.le, "test ROC-AUC (leakage alarm: implausibly high)"),
        "max_single_feature_auc": (
            leak.get("max_single_feature_auc"),
            operator.le,
            f"ROC-AUC of feature {leak.get('max_single_feature')!r} alone (leakage alarm)",
        ),
        "max_ece": (metrics.get("ece"), operator.le, "expected calibration error"),
        "max_segment_roc_auc_gap": (max(gaps) if gaps else None, operator.le, "largest ROC-AUC gap between segments"),
    }


def enforce_gate(verdict: GateVerdict, *, override: str | None, source: str) -> PackagedGate:
    """Raise GateError unless ``verdict`` passed or ``override`` gives a reason; return what package records."""
    if verdict.passed:
        return PackagedGate(**verdict.model_dump())
    failed = "\n  ".join(verdict.reasons or ["(no reason recorded)"])
    if override is None:
        raise GateError(
            f"the model failed the promotion gate ({source}), so it is not packaged:\n  {failed}\n"
            "Improve the model, change evaluate.gate, or set package.override_gate to a reason to package it anyway."
        )
    log.warning("PROMOTION GATE OVERRIDDEN (package.override_gate: %r); failed criteria:\n  %s", override, failed)
    return PackagedGate(**verdict.model_dump(), overridden=True, override_reason=override)
