"""Fairness slices: fairlearn's MetricFrame numbers against a hand computation on a tiny table, per task."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabrepro.config.params import BootstrapParams
from tabrepro.evaluation.fairness import fairness_slices

BOOT = BootstrapParams(n=50, seed=0)
FRAME = pd.DataFrame({"gender": ["F", "F", "F", "M", "M", "M", "M", None]})


def test_binary_selection_rate_and_roc_auc_per_group_by_hand():
    y = np.array([1, 0, 1, 0, 1, 0, 0, 1])
    p = np.array([0.9, 0.2, 0.4, 0.6, 0.7, 0.1, 0.3, 0.8])
    out = fairness_slices(FRAME, y, p, task="binary", columns=["gender"], threshold=0.5, boot=BOOT)["gender"]
    f, m = out["groups"]["F"], out["groups"]["M"]
    assert f["n"] == 3 and f["metrics"]["selection_rate"] == pytest.approx(1 / 3)
    assert m["metrics"]["selection_rate"] == pytest.approx(2 / 4)
    assert f["metrics"]["roc_auc"] == pytest.approx(1.0)  # positives 0.9, 0.4 above the negative 0.2
    assert m["metrics"]["roc_auc"] == pytest.approx(1.0)  # positive 0.7 above 0.6, 0.1, 0.3
    assert out["groups"]["(missing)"]["metrics"]["roc_auc"] is None  # one class: undefined, not an error
    assert out["gaps"]["selection_rate"] == pytest.approx(1 - 1 / 3)  # (missing) selects its one row; F 1/3
    assert out["gate_gap"] == out["gaps"]["selection_rate"]
    ci = m["ci"]["selection_rate"]
    assert 0 <= ci["lo"] <= ci["hi"] <= 1


def test_regression_error_rate_is_the_mae_per_group():
    y = np.arange(8, dtype=float)
    pred = y + np.array([1, -1, 2, 0, 0, 3, -3, 0])
    out = fairness_slices(FRAME, y, pred, task="regression", columns=["gender"], boot=BOOT)["gender"]
    assert out["groups"]["F"]["metrics"]["mae"] == pytest.approx(4 / 3)
    assert out["groups"]["M"]["metrics"]["mae"] == pytest.approx(6 / 4)
    assert out["groups"]["M"]["metrics"]["rmse"] == pytest.approx(np.sqrt(18 / 4))
    assert out["gaps"]["mae"] == pytest.approx(1.5) and out["gate_gap"] == pytest.approx(1.5)


def test_multiclass_predicted_rate_per_class():
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    proba = np.eye(3)[[0, 1, 1, 0, 0, 2, 2, 1]] * 0.8 + 0.2 / 3
    out = fairness_slices(FRAME, y, proba, task="multiclass", columns=["gender"], classes=("a", "b", "c"), boot=BOOT)[
        "gender"
    ]
    assert out["groups"]["F"]["metrics"]["predicted_rate_b"] == pytest.approx(2 / 3)
    assert out["groups"]["M"]["metrics"]["predicted_rate_a"] == pytest.approx(2 / 4)
    assert out["gate_gap"] == pytest.approx(max(v for k, v in out["gaps"].items() if k.startswith("predicted_rate")))


def test_no_sensitive_column_gives_an_empty_section():
    assert fairness_slices(FRAME, np.zeros(8), np.zeros(8), task="regression", columns=[], boot=BOOT) == {}
