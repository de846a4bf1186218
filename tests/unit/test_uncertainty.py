"""Seeded bootstrap CIs and the paired difference between two models."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tabrepro.evaluation.uncertainty import bootstrap_ci, paired_difference, resample_indices

rng = np.random.default_rng(0)
Y = rng.integers(0, 2, 400)
GOOD = np.clip(Y * 0.4 + rng.uniform(0, 0.6, 400), 0, 1)  # informative scores
NOISE = rng.uniform(0, 1, 400)


def _ci(scores: dict, metrics: dict, seed: int = 1, n: int = 200) -> dict:
    return bootstrap_ci(Y, scores, metrics, n=n, seed=seed, level=0.95)


def test_ci_brackets_the_point_estimate_and_is_reproducible():
    ci = _ci({"auc": GOOD}, {"auc": roc_auc_score})["auc"]
    assert ci["lo"] < roc_auc_score(Y, GOOD) < ci["hi"]
    assert ci["hi"] - ci["lo"] < 0.1
    assert _ci({"auc": GOOD}, {"auc": roc_auc_score}) == {"auc": ci}
    assert _ci({"auc": GOOD}, {"auc": roc_auc_score}, seed=2) != {"auc": ci}


def test_paired_difference_of_a_model_with_itself_is_exactly_zero():
    stacked = np.column_stack([GOOD, GOOD])
    ci = _ci({"d": stacked}, {"d": paired_difference(roc_auc_score)})["d"]
    assert ci == {"lo": 0.0, "hi": 0.0}


def test_paired_difference_separates_a_good_model_from_noise():
    ci = _ci({"d": np.column_stack([GOOD, NOISE])}, {"d": paired_difference(roc_auc_score)})["d"]
    assert ci["lo"] > 0.2  # the informative model is better on every resample


def test_resamples_always_hold_both_classes():
    y = np.array([0] * 19 + [1])
    for idx in resample_indices(y, n=50, seed=0):
        assert set(y[idx]) == {0, 1}


@pytest.mark.parametrize("n", [0, -5])
def test_zero_resamples_is_refused(n):
    with pytest.raises(ValueError, match="n >= 1"):
        next(resample_indices(Y, n=n, seed=0))


def test_one_class_is_refused():
    with pytest.raises(ValueError, match="both classes"):
        next(resample_indices(np.zeros(10), n=5, seed=0))
