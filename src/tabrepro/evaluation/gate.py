"""The promotion gate: criteria from params, judged on the evaluated metrics, enforced by ``package``.

``evaluate`` records the verdict in ``reports/metrics.json`` (``gate.passed``, the reasons, and every check with
its value and limit); ``package`` refuses to build a model whose gate failed, naming the criterion, unless
``package.override_gate`` gives a reason (logged, and recorded with the package).
"""

from __future__ import annotations

import logging
import operator
from typing import Any

from tabrepro.config.params import GateParams
from tabrepro.errors import TabreproError

log = logging.getLogger(__name__)


class GateError(TabreproError, RuntimeError):
    """The model failed the promotion gate (or the metrics carry no verdict) and no override was given."""


def judge_gate(metrics: dict[str, Any], gate: GateParams) -> dict[str, Any]:
    """``{"passed", "reasons", "checks"}`` for every criterion switched on in ``gate``."""
    observed = _observed(metrics)
    checks: dict[str, dict[str, Any]] = {}
    reasons: list[str] = []
    for criterion, (value, compare, label) in observed.items():
        limit = getattr(gate, criterion)
        if limit is None or value is None:
            continue
        passed = bool(compare(value, limit))
        checks[criterion] = {"passed": passed, "value": round(float(value), 6), "limit": limit}
        if not passed:
            sign = ">=" if compare is operator.ge else "<="
            reasons.append(f"{criterion}: {label} is {value:.4f}, must be {sign} {limit}")
    return {"passed": not reasons, "reasons": reasons, "checks": checks}


def _observed(metrics: dict[str, Any]) -> dict[str, tuple[float | None, Any, str]]:
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


def enforce_gate(metrics: dict[str, Any], *, override: str | None, source: str) -> dict[str, Any]:
    """Raise GateError unless ``metrics`` passed its gate or ``override`` gives a reason; return the record."""
    gate = metrics.get("gate")
    if not isinstance(gate, dict) or "passed" not in gate:
        raise GateError(f"{source}: no promotion-gate verdict (gate.passed); run the evaluate stage")
    if gate["passed"]:
        return {"passed": True, "overridden": False}
    failed = "\n  ".join(gate.get("reasons") or ["(no reason recorded)"])
    if override is None:
        raise GateError(
            f"the model failed the promotion gate ({source}), so it is not packaged:\n  {failed}\n"
            "Improve the model, change evaluate.gate, or set package.override_gate to a reason to package it anyway."
        )
    log.warning("PROMOTION GATE OVERRIDDEN (package.override_gate: %r); failed criteria:\n  %s", override, failed)
    return {"passed": False, "overridden": True, "override_reason": override, "reasons": gate.get("reasons", [])}
