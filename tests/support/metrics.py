"""Evaluate's scored metrics for gate and model card tests: a few numbers given, every other field filled in."""

from __future__ import annotations

from typing import Any

from tabrepro.artefacts import ScoredMetrics

_BASELINE = {"roc_auc": 0.5, "pr_auc": 0.3, "brier": 0.2, "log_loss": 0.6}
_SEGMENT = {"levels": {}, "roc_auc_gap": None, "recall_gap": None, "precision_gap": None, "positive_rate_gap": None}
_FULL: dict[str, Any] = {
    "roc_auc": 0.85,
    "roc_auc_ci": {"lo": 0.82, "hi": 0.88},
    "pr_auc": 0.6,
    "pr_auc_ci": {"lo": 0.55, "hi": 0.65},
    "brier": 0.14,
    "brier_ci": {"lo": 0.13, "hi": 0.15},
    "ece": 0.02,
    "log_loss": 0.42,
    "accuracy": 0.8,
    "f1": 0.6,
    "precision": 0.6,
    "recall": 0.6,
    "threshold": 0.3,
    "threshold_policy": "max_f1",
    "expected_cost": 0.2,
    "n": 1000,
    "positive_rate": 0.26,
    "vs_logistic": {"roc_auc_diff": 0.004, "roc_auc_diff_ci": {"lo": -0.006, "hi": 0.014}},
    "baselines": {"majority": _BASELINE, "logistic": {**_BASELINE, "roc_auc": 0.846}},
    "bootstrap": {"n": 1000, "seed": 42, "level": 0.95},
    "segments": {},
    "leakage": {"max_single_feature": "tenure", "max_single_feature_auc": 0.76},
}


def scored_metrics(given: dict[str, Any]) -> ScoredMetrics:
    """``given`` (a part of ``reports/metrics.json``'s layout) completed with plausible values and validated."""
    data = _merged(_FULL, given)
    data["segments"] = {name: {**_SEGMENT, **column} for name, column in given.get("segments", {}).items()}
    return ScoredMetrics.model_validate(data)


def _merged(full: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    out = dict(full)
    for key, value in given.items():
        both_dicts = isinstance(value, dict) and isinstance(full.get(key), dict)
        out[key] = _merged(full[key], value) if both_dicts else value
    return out
