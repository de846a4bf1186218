"""The preprocessor derived from the contract, and the drift reference statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabrepro.contract.table import parse_table
from tabrepro.errors import ConfigError
from tabrepro.monitoring.drift import compute_reference_stats
from tabrepro.training.features import build_preprocessor, select_features, transform_frame


@pytest.fixture
def parsed(tiny_raw, tiny_contract) -> pd.DataFrame:
    return parse_table(tiny_raw, tiny_contract)[0]


def test_output_columns_come_from_the_contract(parsed, tiny_contract):
    pre = build_preprocessor(tiny_contract).fit(parsed)
    out = transform_frame(pre, parsed)
    assert list(out.columns) == ["num__age", "num__spend", "bool__active", "cat__plan_basic", "cat__plan_pro"]
    assert out.dtypes.eq(np.float32).all()


def test_imputer_is_fitted_on_the_fit_frame_only(parsed, tiny_contract):
    pre = build_preprocessor(tiny_contract).fit(parsed)
    other = parsed.assign(spend=[np.nan, 1000.0, 1000.0, 1000.0, 1000.0, 1000.0])
    out = transform_frame(pre, other)
    assert out.loc[0, "num__spend"] == pytest.approx(parsed["spend"].median())


def test_missing_category_encodes_as_zeros(parsed, tiny_contract):
    pre = build_preprocessor(tiny_contract).fit(parsed)
    out = transform_frame(pre, parsed.assign(plan=pd.Series([np.nan] * 6, dtype="str")))
    assert (out[["cat__plan_basic", "cat__plan_pro"]] == 0).all().all()


def test_drop_removes_a_feature(parsed, tiny_contract):
    pre = build_preprocessor(tiny_contract, drop=["plan"]).fit(parsed)
    assert not any("plan" in c for c in transform_frame(pre, parsed).columns)


def test_drop_of_unknown_feature_is_named(tiny_contract):
    with pytest.raises(ConfigError, match=r"features\.drop: \['plann'\]"):
        select_features(tiny_contract, drop=["plann"])


def test_reference_stats(parsed, tiny_contract):
    stats = compute_reference_stats(parsed, tiny_contract, bins=3)
    age = stats["features"]["age"]
    assert sum(age["fractions"]) == pytest.approx(1.0, abs=1e-5)
    assert len(age["fractions"]) == len(age["edges"]) + 1
    assert stats["features"]["spend"]["missing_rate"] == pytest.approx(1 / 6, abs=1e-6)
    assert stats["features"]["plan"]["frequencies"] == {"basic": 0.5, "pro": 0.5}
    assert stats["rows"] == 6


def test_reference_stats_of_empty_split(parsed, tiny_contract):
    with pytest.raises(ValueError, match="empty"):
        compute_reference_stats(parsed.iloc[:0], tiny_contract, bins=3)
