"""Evaluation metrics and the threshold policy."""

from __future__ import annotations

import numpy as np
import pytest

from tabrepro.config.params import CostMatrix
from tabrepro.evaluation.metrics import (
    choose_threshold,
    classification_metrics,
    cost_points,
    curve_points,
    expected_calibration_error,
    expected_costs,
)

Y = np.array([0, 0, 0, 1, 1, 0, 1, 1])
P = np.array([0.1, 0.2, 0.35, 0.4, 0.8, 0.45, 0.7, 0.9])


def test_max_f1_threshold_separates_what_it_can():
    # cutting at 0.4 gives TP=4, FP=1 -> F1 0.889, the best available; the threshold is halfway to 0.35 below it
    assert choose_threshold(Y, P) == 0.375


def test_metrics_at_threshold():
    m = classification_metrics(Y, P, threshold=0.4)
    assert m["accuracy"] == pytest.approx(7 / 8)
    assert m["recall"] == 1.0 and m["precision"] == pytest.approx(0.8)
    assert m["roc_auc"] == pytest.approx(15 / 16)
    assert set(m) >= {"roc_auc", "pr_auc", "log_loss", "brier", "accuracy", "f1", "threshold"}


def test_single_class_is_refused():
    with pytest.raises(ValueError, match="both classes"):
        classification_metrics(np.zeros(4), np.full(4, 0.3), threshold=0.5)


def test_unknown_policy():
    with pytest.raises(ValueError, match="policy"):
        choose_threshold(Y, P, policy="youden")


def test_curve_points_shapes():
    pts = curve_points(Y, P, threshold=0.5, calibration_bins=2)
    assert pts["roc"][0] == {"fpr": 0.0, "tpr": 0.0} and pts["roc"][-1] == {"fpr": 1.0, "tpr": 1.0}
    assert len(pts["confusion"]) == len(Y)
    assert len(pts["calibration"]) == 2


COST = CostMatrix(false_negative=10, false_positive=1, true_positive=1, true_negative=0)


def _brute_force_cost(y: np.ndarray, p: np.ndarray, t: float, cost: CostMatrix) -> float:
    pred = p >= t
    return (
        np.sum(~pred & (y == 1)) * cost.false_negative
        + np.sum(pred & (y == 0)) * cost.false_positive
        + np.sum(pred & (y == 1)) * cost.true_positive
        + np.sum(~pred & (y == 0)) * cost.true_negative
    ) / len(y)


def test_expected_costs_match_counting_each_outcome():
    grid = np.array([0.0, 0.15, 0.35, 0.4, 0.41, 0.75, 0.9, 1.0])
    got = expected_costs(Y, P, grid, COST)
    assert got == pytest.approx([_brute_force_cost(Y, P, t, COST) for t in grid])


def test_min_cost_threshold_is_the_cheapest_on_val():
    t = choose_threshold(Y, P, policy="min_cost", cost=COST)
    # a missed positive costs 10x a needless action: act on every positive (cut at 0.4), accept one false positive
    assert t == 0.375
    grid = np.unique(np.append(P, [0.0, 1.0]))
    assert _brute_force_cost(Y, P, t, COST) == pytest.approx(min(_brute_force_cost(Y, P, g, COST) for g in grid))


def test_min_cost_with_expensive_actions_acts_on_nobody():
    stingy = CostMatrix(false_negative=1, false_positive=100, true_positive=100, true_negative=0)
    t = choose_threshold(Y, P, policy="min_cost", cost=stingy)
    assert t == 0.95  # no row is labelled positive: halfway from the top score to 1


def test_min_cost_needs_a_cost_matrix():
    with pytest.raises(ValueError, match="cost matrix"):
        choose_threshold(Y, P, policy="min_cost")


def test_ece_by_hand():
    y = np.array([0, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.8, 0.9])
    # 2 bins: [0, .5): rate 0.5, mean score 0.15 -> 0.35; [.5, 1]: rate 1, mean 0.85 -> 0.15; weighted 0.25
    assert expected_calibration_error(y, p, bins=2) == pytest.approx(0.25)
    assert expected_calibration_error(np.array([0, 1]), np.array([0.0, 1.0]), bins=10) == 0.0


def test_cost_points_cover_the_threshold_range():
    rows = cost_points(Y, P, Y, P, COST, steps=11)
    assert [r["threshold"] for r in rows] == pytest.approx(np.linspace(0, 1, 11))
    assert rows[0]["val_cost"] == pytest.approx(_brute_force_cost(Y, P, 0.0, COST))
