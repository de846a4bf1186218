"""Reference statistics of the training data, the baseline that drift checks compare live data against."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tabrepro.contract import DataContract

N_QUANTILES = 101


def compute_reference_stats(train: pd.DataFrame, contract: DataContract, *, bins: int) -> dict[str, Any]:
    """Per-feature statistics of the (parsed, unencoded) training split.

    Numerics: quantile bin edges and the share of rows per bin (for PSI), a quantile sketch (for KS), moments.
    Booleans and categoricals: level frequencies. Every feature: its missing rate.
    """
    if train.empty:
        raise ValueError("cannot compute reference statistics of an empty training split")
    features = {}
    for name, spec in contract.features.items():
        column = train[name]
        stats: dict[str, Any] = {"type": spec.type, "missing_rate": _rate(column.isna())}
        if spec.type == "numeric":
            stats |= _numeric_stats(column.dropna().to_numpy(dtype=float), bins=bins)
        else:
            stats["frequencies"] = _frequencies(column.dropna())
        features[name] = stats
    return {"contract": contract.name, "rows": len(train), "features": features}


def compute_score_reference(probabilities: np.ndarray, *, bins: int = 10) -> dict[str, Any]:
    """The distribution of the packaged model's predicted probabilities on the test split, the reference that the
    drift of live predictions is measured against (same layout as a numeric feature's statistics)."""
    values = np.asarray(probabilities, dtype=float)
    if values.size == 0:
        raise ValueError("cannot compute a score reference from no predictions")
    return {"rows": int(values.size), **_numeric_stats(values, bins=bins)}


def _numeric_stats(values: np.ndarray, *, bins: int) -> dict[str, Any]:
    if values.size == 0:
        return {"edges": [], "fractions": [], "quantiles": []}
    edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1))[1:-1])
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)
    return {
        "edges": _floats(edges),
        "fractions": _floats(counts / values.size),
        "quantiles": _floats(np.quantile(values, np.linspace(0, 1, N_QUANTILES))),
        "mean": round(float(values.mean()), 6),
        "std": round(float(values.std()), 6),
    }


def _frequencies(column: pd.Series) -> dict[str, float]:
    shares = column.astype("str").value_counts(normalize=True).sort_index()
    return {str(level): round(float(share), 6) for level, share in shares.items()}


def _rate(mask: pd.Series) -> float:
    return round(float(mask.mean()), 6)


def _floats(array: np.ndarray) -> list[float]:
    return [round(float(x), 6) for x in array]
