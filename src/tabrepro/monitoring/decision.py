"""Verdicts on drift statistics: which thresholds of ``DriftParams`` a feature (or the predicted probabilities)
crossed, and whether that calls for retraining, with reasons that say which and by how much."""

from __future__ import annotations

from typing import Any

from tabrepro.config.params import DriftParams
from tabrepro.monitoring.stats import psi_band

_NOT_FOR_SCORES = ("type", "missing_rate", "unknown_share", "unknown_values")  # probabilities are never refused


def judge_entry(entry: dict[str, Any], params: DriftParams, *, score: bool = False) -> dict[str, Any]:
    """The PSI band (after the PSI), the thresholds crossed (``flags``) and ``drifted``, before the distribution."""
    value, p_value = entry["psi"], entry["p_value"]
    band = None if value is None else psi_band(value, moderate=params.psi_moderate, significant=params.psi_significant)
    floor = params.score_psi if score else params.psi_moderate
    flags = ["distribution"] if value is not None and value >= floor and p_value < params.p_value else []
    if not score:
        rates = entry["missing_rate"]
        if rates["current"] is not None and abs(rates["current"] - rates["reference"]) > params.max_missing_change:
            flags.append("missing_rate")
        if entry["unknown_share"] > params.max_unknown_share:
            flags.append("unknown_values")
    items = [(k, v) for k, v in entry.items() if k != "distribution" and not (score and k in _NOT_FOR_SCORES)]
    items.insert([k for k, _ in items].index("psi") + 1, ("band", band))
    return {**dict(items), "flags": flags, "drifted": bool(flags), "distribution": entry["distribution"]}


def decide_retrain(
    features: dict[str, dict[str, Any]],
    score: dict[str, Any] | None,
    params: DriftParams,
    *,
    scores: str = "predicted probabilities",
) -> dict[str, Any]:
    """Retrain when more than ``max_drifted_features`` features drift significantly, or when unknown values,
    a missing rate or the predicted probabilities cross their thresholds. Each reason says which and by how much."""
    reasons = []
    significant = [n for n, f in features.items() if "distribution" in f["flags"] and f["band"] == "significant"]
    if len(significant) > params.max_drifted_features:
        listed = ", ".join(f"{n} (PSI {features[n]['psi']:.3f}, p {features[n]['p_value']:.2g})" for n in significant)
        reasons.append(
            f"{len(significant)} feature(s) drifted significantly (PSI >= {params.psi_significant:g}, "
            f"p < {params.p_value:g}), more than drift.max_drifted_features = {params.max_drifted_features}: {listed}"
        )
    unknown = [
        f"{n} {f['unknown_share']:.1%} (e.g. {list(f['unknown_values'])[:3]})"
        for n, f in features.items()
        if "unknown_values" in f["flags"]
    ]
    if unknown:
        reasons.append(
            f"values the contract refuses above drift.max_unknown_share = {params.max_unknown_share:g}: "
            + "; ".join(unknown)
        )
    missing = [
        f"{n} {f['missing_rate']['reference']:.1%} -> {f['missing_rate']['current']:.1%}"
        for n, f in features.items()
        if "missing_rate" in f["flags"]
    ]
    if missing:
        reasons.append(
            f"missing rate moved by more than drift.max_missing_change = {params.max_missing_change:g}: "
            + "; ".join(missing)
        )
    if score is not None and score.get("drifted"):
        reasons.append(
            f"{scores} drifted: PSI {score['psi']:.3f} >= drift.score_psi = {params.score_psi:g} "
            f"(KS p {score['p_value']:.2g})"
        )
    return {"retrain": bool(reasons), "reasons": reasons}
