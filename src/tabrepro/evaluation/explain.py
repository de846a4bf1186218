"""Why the model predicts what it does: per-row feature contributions and global feature importance.

Contributions are exact and native where the model has them, in log-odds: XGBoost's TreeSHAP
(``pred_contribs``) and, for the logistic model, coefficient x scaled value (the exact SHAP value of a linear
model with independent features). The random forest has none (its importance is permutation only). Columns that
the preprocessor made from one contract feature (the one-hot levels of ``Contract``) are summed back into that
feature, so explanations speak the contract's language. Importance is the permutation ROC-AUC drop on the test
split (all of a feature's columns shuffled together), which means the same thing for every model family.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xgboost as xgb
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline

from tabrepro.config.precision import DEFAULT_DECIMALS, rounded

BIAS = "(bias)"


def group_columns(column_names: Sequence[str], features: Sequence[str]) -> dict[str, list[int]]:
    """Indices of the preprocessor's output columns (``cat__Contract_One year``) per contract feature."""
    by_length = sorted(features, key=len, reverse=True)
    groups: dict[str, list[int]] = {f: [] for f in features}
    for i, name in enumerate(column_names):
        rest = name.split("__", 1)[-1]
        owner = next((f for f in by_length if rest == f or rest.startswith(f"{f}_")), None)
        if owner is None:
            raise ValueError(f"feature column {name!r} belongs to no contract feature")
        groups[owner].append(i)
    return {f: idx for f, idx in groups.items() if idx}


def feature_contributions(model: Any, x: np.ndarray, groups: dict[str, list[int]]) -> dict[str, np.ndarray] | None:
    """Per-row contributions (log-odds) per contract feature plus ``BIAS``; None for models without them."""
    if hasattr(model, "get_booster"):
        raw = model.get_booster().predict(xgb.DMatrix(x), pred_contribs=True)
        columns, bias = raw[:, :-1], raw[:, -1]
    elif isinstance(model, Pipeline) and hasattr(model[-1], "coef_"):
        scaled = model[:-1].transform(x)
        columns = scaled * model[-1].coef_[0]
        bias = np.full(len(x), float(model[-1].intercept_[0]))
    else:
        return None
    grouped = {f: columns[:, idx].sum(axis=1) for f, idx in groups.items()}
    return {**grouped, BIAS: bias}


def permutation_importance(
    model: Any, x: np.ndarray, y: np.ndarray, groups: dict[str, list[int]], *, repeats: int, seed: int
) -> dict[str, tuple[float, float]]:
    """``{feature: (mean, std)}`` of the ROC-AUC lost when the feature's columns are shuffled together."""
    rng = np.random.default_rng(seed)
    base = roc_auc_score(y, model.predict_proba(x)[:, 1])
    result = {}
    for feature, idx in groups.items():
        drops = []
        for _ in range(repeats):
            shuffled = x.copy()
            shuffled[:, idx] = x[rng.permutation(len(x))][:, idx]
            drops.append(base - roc_auc_score(y, model.predict_proba(shuffled)[:, 1]))
        result[feature] = (float(np.mean(drops)), float(np.std(drops)))
    return result


def importance_table(
    permutation: dict[str, tuple[float, float]],
    contributions: dict[str, np.ndarray] | None,
    *,
    decimals: int = DEFAULT_DECIMALS,
) -> list[dict[str, Any]]:
    """One row per feature, most important first: permutation drop (and its std), mean |contribution|, ``rounded``
    (the order is taken on the rounded drops)."""
    rows = [
        {
            "feature": feature,
            "importance": rounded(mean, decimals),
            "importance_std": rounded(std, decimals),
            "mean_abs_contribution": None
            if contributions is None
            else rounded(np.abs(contributions[feature]).mean(), decimals),
        }
        for feature, (mean, std) in permutation.items()
    ]
    return sorted(rows, key=lambda r: (-r["importance"], r["feature"]))
