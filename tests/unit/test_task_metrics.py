"""Regression and multiclass metrics against scikit-learn on small known arrays, their paired CIs, baselines."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, log_loss, mean_absolute_error, r2_score, roc_auc_score, root_mean_squared_error

from tabrepro.config.params import BootstrapParams
from tabrepro.evaluation.multiclass import multiclass_baselines, per_class, score_multiclass, top_label_ece
from tabrepro.evaluation.regression import regression_baselines, regression_metrics, score_regression

BOOT = BootstrapParams(n=200, seed=3)
Y = np.array([3.0, 1.0, 4.0, 1.5, 5.0, 9.0, 2.0, 6.0])
P = np.array([2.5, 1.0, 4.5, 2.0, 5.5, 8.0, 2.5, 5.0])


def test_regression_metrics_equal_sklearn_and_mape_needs_a_nonzero_target():
    m = regression_metrics(Y, P)
    assert m["rmse"] == pytest.approx(root_mean_squared_error(Y, P))
    assert m["mae"] == pytest.approx(mean_absolute_error(Y, P)) and m["r2"] == pytest.approx(r2_score(Y, P))
    assert m["mape"] == pytest.approx(np.mean(np.abs(Y - P) / np.abs(Y)))
    assert regression_metrics(np.append(Y, 0.0), np.append(P, 0.1))["mape"] is None


def test_regression_cis_pair_the_model_and_the_baselines_on_the_same_resamples():
    rng = np.random.default_rng(0)
    y = rng.normal(10, 3, 200)
    baselines = {"mean": np.full(200, 10.0), "median": np.full(200, 10.0), "ridge": y + rng.normal(0, 1, 200)}
    same = score_regression(y, baselines["ridge"], baselines, BOOT)
    assert same["vs_baselines"]["ridge"] == {"rmse_diff": 0.0, "rmse_diff_ci": {"lo": 0.0, "hi": 0.0}}
    assert same["vs_baselines"]["mean"]["rmse_diff_ci"]["hi"] < 0  # better than the mean on every resample
    assert same["rmse_ci"]["lo"] < same["rmse"] < same["rmse_ci"]["hi"]
    assert score_regression(y, baselines["ridge"], baselines, BOOT) == same  # seeded


def test_regression_baselines_are_fitted_on_train_only():
    x = np.arange(20, dtype=float).reshape(-1, 1)
    y = 2 * x[:, 0] + 1
    out = regression_baselines(x[:10], y[:10], x[10:])
    assert np.all(out["mean"] == np.mean(y[:10])) and np.all(out["median"] == np.median(y[:10]))
    ridge_error, mean_error = np.abs(out["ridge"] - y[10:]).mean(), np.abs(out["mean"] - y[10:]).mean()
    assert ridge_error < mean_error / 2  # the linear model follows the trend the constant cannot


PROBA = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1], [0.1, 0.3, 0.6], [0.3, 0.3, 0.4]])
YC = np.array([0, 1, 2, 1, 2, 0])


def test_multiclass_metrics_equal_sklearn():
    prior = np.tile([1 / 3, 1 / 3, 1 / 3], (6, 1))
    m = score_multiclass(YC, PROBA, {"logistic": PROBA, "prior": prior}, BOOT, classes=("a", "b", "c"))
    pred = PROBA.argmax(axis=1)
    assert m["log_loss"] == pytest.approx(log_loss(YC, PROBA))
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["f1_macro"] == pytest.approx(f1_score(YC, pred, average="macro"))
    assert m["f1_weighted"] == pytest.approx(f1_score(YC, pred, average="weighted"))
    assert m["roc_auc_ovr"] == pytest.approx(roc_auc_score(YC, PROBA, multi_class="ovr"))
    assert m["vs_baselines"]["logistic"]["log_loss_diff_ci"] == {"lo": 0.0, "hi": 0.0}
    assert m["per_class"]["a"] == {"precision": 0.5, "recall": 0.5, "predicted_rate": 2 / 6}


def test_per_class_names_the_classes_in_contract_order():
    assert list(per_class(YC, PROBA, ("x", "y", "z"))) == ["x", "y", "z"]


def test_top_label_ece_by_hand():
    # confidences 0.7 0.8 0.6 0.5 0.6 0.4, correct 1 1 1 0 1 0; 10 bins: 0.4 | 0.5 | 0.6,0.6 | 0.7 | 0.8
    gaps = abs(0 - 0.4) + abs(0 - 0.5) + abs(2 - 1.2) + abs(1 - 0.7) + abs(1 - 0.8)
    assert top_label_ece(YC, PROBA, bins=10) == pytest.approx(gaps / 6)


def test_multiclass_baselines_prior_and_logistic_sum_to_one():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(90, 2)).astype(np.float32)
    y = np.digitize(x[:, 0], [-0.4, 0.4])
    out = multiclass_baselines(x[:60], y[:60], x[60:], n_classes=3)
    assert out["prior"][0] == pytest.approx(np.bincount(y[:60], minlength=3) / 60)
    assert out["logistic"].sum(axis=1) == pytest.approx(np.ones(30)) and out["logistic"].dtype == np.float64
