"""The leakage alarm: a feature that alone predicts the target."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabrepro.contract.spec import load_contract
from tabrepro.evaluation.leakage import single_feature_auc
from tests.conftest import TINY_CONTRACT


def _split(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n).astype("int8")
    return pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "age": rng.integers(18, 90, n).astype(float),  # noise
            "spend": np.where(y == 1, 50.0, 10.0) + rng.normal(0, 1, n),  # the label in disguise
            "plan": np.where(y == 1, "pro", "basic"),  # a copy of the label as a category
            "active": rng.integers(0, 2, n).astype(float),
            "y": y,
        }
    )


def test_leaky_features_come_first_with_auc_near_one():
    aucs = single_feature_auc(_split(300, 0), _split(200, 1), load_contract(TINY_CONTRACT))
    assert list(aucs)[:2] in (["spend", "plan"], ["plan", "spend"])
    assert aucs["spend"] > 0.99 and aucs["plan"] == 1.0
    assert aucs["age"] < 0.65 and aucs["active"] < 0.65


def test_direction_free_and_missing_values_tolerated():
    train, test = _split(300, 0), _split(200, 1)
    test = test.assign(spend=-test["spend"])  # inversely related: still a perfect predictor
    test.loc[:4, "spend"] = np.nan
    test.loc[:4, "plan"] = None
    aucs = single_feature_auc(train, test, load_contract(TINY_CONTRACT))
    assert aucs["spend"] > 0.95
    assert aucs["plan"] == pytest.approx(1.0, abs=0.03)
