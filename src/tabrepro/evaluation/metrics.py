"""Evaluation metrics, threshold choice and the data behind the plots: pure functions of labels and scores."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from tabrepro.config.params import CostMatrix
from tabrepro.config.precision import DEFAULT_DECIMALS, rounded, rounded_between


def choose_threshold(
    y_true: np.ndarray,
    proba: np.ndarray,
    *,
    policy: str = "max_f1",
    cost: CostMatrix | None = None,
    decimals: int = DEFAULT_DECIMALS,
) -> float:
    """The decision threshold for ``policy``, chosen on a validation split (never the test split).

    ``max_f1``: the cut (label ``proba >= cut`` positive) with the highest F1. ``min_cost``: the cut with the
    lowest expected cost per row under ``cost`` (ties go to the highest cut, the one that acts on fewest rows).
    Both criteria are exact functions of counts; the threshold returned labels the val rows as the cut does but
    lies between two distinct scores (``threshold_between``), so no row sits on it.
    """
    _check_inputs(y_true, proba)
    if policy == "max_f1":
        precision, recall, thresholds = precision_recall_curve(y_true, proba)
        with np.errstate(divide="ignore", invalid="ignore"):
            f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        return threshold_between(proba, float(thresholds[int(np.argmax(f1[:-1]))]), decimals=decimals)
    if policy == "min_cost":
        if cost is None:
            raise ValueError("threshold policy 'min_cost' needs a cost matrix")
        candidates = np.unique(np.append(proba, np.nextafter(proba.max(), np.inf)))
        costs = expected_costs(y_true, proba, candidates, cost)
        best = np.flatnonzero(costs == costs.min())[-1]
        return threshold_between(proba, float(candidates[best]), decimals=decimals)
    raise ValueError(f"unknown threshold policy {policy!r}")


def threshold_between(proba: np.ndarray, cut: float, *, decimals: int = DEFAULT_DECIMALS) -> float:
    """A threshold that labels positive exactly the scores ``>= cut`` and equals none of them: the midpoint of the
    lowest score at or above ``cut`` and the next distinct score below it, ``rounded_between`` them at ``decimals``
    places. A threshold equal to a score puts every row tied with it (rows with the same features) on the edge,
    where float32 (ONNX) and float64 (scikit-learn) disagree on its side. No score below: 0 (every row is
    positive); none at or above: between the top score and 1 (or just above 1), so no row is positive."""
    below, above = proba[proba < cut], proba[proba >= cut]
    if below.size == 0:
        return 0.0
    top = float(below.max())
    if above.size == 0:
        return rounded_between(top, 1.0 if top < 1.0 else top + 2 * 10.0**-decimals, decimals)
    return rounded_between(top, float(above.min()), decimals)


def expected_costs(y_true: np.ndarray, proba: np.ndarray, thresholds: np.ndarray, cost: CostMatrix) -> np.ndarray:
    """Expected cost per row of labelling ``proba >= t`` positive, for every ``t`` in ``thresholds``."""
    order = np.sort(proba)
    pos = np.sort(proba[y_true == 1])
    n_pos, n = len(pos), len(order)
    predicted_neg = np.searchsorted(order, thresholds, side="left")  # rows below each threshold
    fn = np.searchsorted(pos, thresholds, side="left")
    tn = predicted_neg - fn
    tp, fp = n_pos - fn, (n - n_pos) - tn
    total = fn * cost.false_negative + fp * cost.false_positive + tp * cost.true_positive + tn * cost.true_negative
    per_row: np.ndarray = total / n
    return per_row


def expected_calibration_error(y_true: np.ndarray, proba: np.ndarray, *, bins: int = 10) -> float:
    """ECE: the row-weighted mean |observed rate - mean score| over ``bins`` equal-width score bins."""
    _check_inputs(y_true, proba)
    which = np.minimum((proba * bins).astype(int), bins - 1)
    counts = np.bincount(which, minlength=bins)
    observed = np.bincount(which, weights=y_true, minlength=bins)
    predicted = np.bincount(which, weights=proba, minlength=bins)
    filled = counts > 0
    gaps = np.abs(observed[filled] - predicted[filled])  # = count * |rate - mean score|
    return float(gaps.sum() / len(y_true))


def classification_metrics(y_true: np.ndarray, proba: np.ndarray, *, threshold: float) -> dict[str, Any]:
    """Ranking, probabilistic and thresholded metrics of ``proba`` against ``y_true``."""
    _check_inputs(y_true, proba)
    labels = (proba >= threshold).astype(int)
    return {
        "roc_auc": float(roc_auc_score(y_true, proba)),
        "pr_auc": float(average_precision_score(y_true, proba)),
        "log_loss": float(log_loss(y_true, proba, labels=[0, 1])),
        "brier": float(brier_score_loss(y_true, proba)),
        "accuracy": float(accuracy_score(y_true, labels)),
        "f1": float(f1_score(y_true, labels, zero_division=0)),
        "precision": float(precision_score(y_true, labels, zero_division=0)),
        "recall": float(recall_score(y_true, labels, zero_division=0)),
        "threshold": float(threshold),
        "n": len(y_true),
        "positive_rate": float(np.mean(y_true)),
    }


def curve_points(
    y_true: np.ndarray,
    proba: np.ndarray,
    *,
    threshold: float,
    calibration_bins: int = 10,
    decimals: int = DEFAULT_DECIMALS,
) -> dict[str, list[dict[str, Any]]]:
    """Rows for ``dvc plots``: ROC, precision-recall, calibration and per-row confusion pairs, ``rounded``."""
    _r = partial(rounded, decimals=decimals)
    fpr, tpr, _ = roc_curve(y_true, proba)
    precision, recall, _ = precision_recall_curve(y_true, proba)
    frac_pos, mean_pred = calibration_curve(y_true, proba, n_bins=calibration_bins, strategy="quantile")
    labels = (proba >= threshold).astype(int)
    return {
        "roc": [{"fpr": _r(f), "tpr": _r(t)} for f, t in zip(fpr, tpr, strict=True)],
        "pr": [{"recall": _r(r), "precision": _r(p)} for r, p in zip(recall, precision, strict=True)],
        "calibration": [
            {"mean_predicted": _r(m), "fraction_positive": _r(f)} for m, f in zip(mean_pred, frac_pos, strict=True)
        ],
        "confusion": [{"actual": int(a), "predicted": int(p)} for a, p in zip(y_true, labels, strict=True)],
    }


def cost_points(
    y_val: np.ndarray,
    p_val: np.ndarray,
    y_test: np.ndarray,
    p_test: np.ndarray,
    cost: CostMatrix,
    *,
    steps: int = 101,
    decimals: int = DEFAULT_DECIMALS,
) -> list[dict[str, float]]:
    """Expected cost per row against the threshold, on val (where it is chosen) and on test, ``rounded``."""
    _r = partial(rounded, decimals=decimals)
    grid = np.linspace(0.0, 1.0, steps)
    val, test = expected_costs(y_val, p_val, grid, cost), expected_costs(y_test, p_test, grid, cost)
    rows = zip(grid, val, test, strict=True)
    return [{"threshold": _r(t), "val_cost": _r(v), "test_cost": _r(c)} for t, v, c in rows]


def confusion_counts(y_true: np.ndarray, proba: np.ndarray, *, threshold: float) -> np.ndarray:
    counts: np.ndarray = confusion_matrix(y_true, (proba >= threshold).astype(int), labels=[0, 1])
    return counts


def _check_inputs(y_true: np.ndarray, proba: np.ndarray) -> None:
    if len(y_true) != len(proba) or len(y_true) == 0:
        raise ValueError(f"need equal, non-zero lengths; got {len(y_true)} labels, {len(proba)} scores")
    if len(np.unique(y_true)) < 2:
        raise ValueError("metrics need both classes in y_true")
