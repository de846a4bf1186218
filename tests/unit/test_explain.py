"""Explanations: contributions add up to the model's own log-odds; importance finds what matters."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from tabrepro.evaluation.explain import (
    BIAS,
    feature_contributions,
    group_columns,
    importance_table,
    permutation_importance,
)
from tabrepro.training.modeling import build_model

COLUMNS = ["num__tenure", "bool__Partner", "cat__Contract_One year", "cat__Contract_Two year", "cat__PaymentMethod_X"]
FEATURES = ["tenure", "Partner", "Contract", "PaymentMethod", "unused"]

rng = np.random.default_rng(0)
X = np.column_stack(
    [rng.uniform(0, 72, 500), rng.integers(0, 2, 500), *np.eye(3)[rng.integers(0, 3, 500)][:, :2].T, rng.random(500)]
).astype(np.float32)
Y = (rng.random(500) < 1 / (1 + np.exp(0.08 * (X[:, 0] - 30) + 1.5 * X[:, 3]))).astype(int)
GROUPS = group_columns(COLUMNS, FEATURES)


def test_one_hot_columns_group_back_into_their_feature():
    assert GROUPS == {"tenure": [0], "Partner": [1], "Contract": [2, 3], "PaymentMethod": [4]}


def test_a_column_of_no_feature_is_refused():
    with pytest.raises(ValueError, match="'cat__Region_North' belongs to no contract feature"):
        group_columns(["cat__Region_North"], FEATURES)


@pytest.mark.parametrize("family", ["xgboost", "logreg"])
def test_contributions_add_up_to_the_models_log_odds(family):
    params = {"n_estimators": 50, "max_depth": 3} if family == "xgboost" else {"max_iter": 500}
    model = build_model(family, params, seed=0).fit(X, Y)
    parts = feature_contributions(model, X, GROUPS)
    assert set(parts) == {*GROUPS, BIAS}
    p = model.predict_proba(X)[:, 1]
    assert sum(parts.values()) == pytest.approx(np.log(p / (1 - p)), abs=1e-4)


def test_a_forest_has_no_native_contributions():
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, Y)
    assert feature_contributions(forest, X, GROUPS) is None


def test_permutation_importance_ranks_signal_above_noise():
    model = build_model("logreg", {"max_iter": 500}, seed=0).fit(X, Y)
    imp = permutation_importance(model, X, Y, GROUPS, repeats=3, seed=0)
    assert imp["tenure"][0] > 0.1
    assert abs(imp["PaymentMethod"][0]) < 0.02
    table = importance_table(imp, feature_contributions(model, X, GROUPS))
    assert table[0]["feature"] == "tenure"
    assert [r["importance"] for r in table] == sorted((r["importance"] for r in table), reverse=True)
