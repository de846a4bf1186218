"""Evaluation metrics and the threshold policy."""

from __future__ import annotations

import numpy as np
import pytest

from tabrepro.metrics import choose_threshold, classification_metrics, curve_points

Y = np.array([0, 0, 0, 1, 1, 0, 1, 1])
P = np.array([0.1, 0.2, 0.35, 0.4, 0.8, 0.45, 0.7, 0.9])


def test_max_f1_threshold_separates_what_it_can():
    # thresholds at 0.4 give TP=4, FP=1 -> F1 0.889, the best available
    assert choose_threshold(Y, P) == pytest.approx(0.4)


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
