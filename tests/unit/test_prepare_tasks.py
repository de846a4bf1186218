"""prepare per task (issue 21): the target's encoding (binary int8, multiclass int16 class index, regression
float64), the class minimum named for every class, the regression target's quantile-binned split, the data-quality
summary per task, and the target's parsing messages (line and column) for each task."""

from __future__ import annotations

import pandas as pd
import pytest

from tabrepro.artefacts import DataQuality
from tabrepro.config.params import SplitParams
from tabrepro.contract.spec import DataContract, load_contract
from tabrepro.contract.table import ContractViolation, check_table
from tabrepro.errors import DataError
from tabrepro.io.targets import MAX_REGRESSION_BINS, regression_bins, regression_strata
from tabrepro.stages.prepare import check_class_counts, clean_table, min_class_rows, split_data, summarise_quality
from tests.conftest import TINY_CONTRACT

SPLIT = SplitParams(train=0.7, val=0.15, test=0.15, seed=0)
MULTI = {"column": "y", "task": "multiclass", "classes": ["b", "a", "c"]}  # class order is not sorted order
REGRESSION = {"column": "y", "task": "regression", "min": 0, "max": 1000, "unit": "EUR"}


def _contract(target: dict) -> DataContract:
    return load_contract({**TINY_CONTRACT, "target": target})


def _raw(labels: list[str]) -> pd.DataFrame:
    n = len(labels)
    frame = pd.DataFrame(
        {
            "id": [f"c{i}" for i in range(n)],
            "age": [str(20 + i % 50) for i in range(n)],
            "spend": [str(i) for i in range(n)],
            "plan": ["basic" if i % 3 else "pro" for i in range(n)],
            "active": ["Yes" if i % 2 else "No" for i in range(n)],
            "y": labels,
        },
        dtype="str",
    )
    return frame.set_axis(pd.RangeIndex(2, n + 2))  # CSV line numbers (the header is line 1)


def test_multiclass_target_is_the_int16_index_in_the_contracts_class_order():
    clean, _ = clean_table(_raw(["a", "b", "c", "a"]), _contract(MULTI), source="raw.csv")
    assert clean["y"].dtype == "int16"
    assert clean["y"].tolist() == [1, 0, 2, 1]


def test_regression_target_is_float64_and_a_constant_is_refused():
    clean, _ = clean_table(_raw(["1.5", "20", "7", "0"]), _contract(REGRESSION), source="raw.csv")
    assert clean["y"].dtype == "float64"
    assert clean["y"].tolist() == [1.5, 20.0, 7.0, 0.0]
    with pytest.raises(DataError, match="target 'y' has a single value"):
        clean_table(_raw(["3", "3", "3"]), _contract(REGRESSION), source="raw.csv")


def test_target_parse_errors_name_the_line_and_the_column():
    with pytest.raises(ContractViolation) as caught:
        check_table(_raw(["1", "abc", "5000"]), _contract(REGRESSION), source="raw.csv", row_label="line")
    text = str(caught.value)
    assert "'y'" in text and "line 3" in text and "line 4" in text  # not a number; above max 1000
    with pytest.raises(ContractViolation) as caught:
        check_table(_raw(["a", "d", "b"]), _contract(MULTI), source="raw.csv", row_label="line")
    assert "'y'" in str(caught.value) and "line 3" in str(caught.value) and "'d'" in str(caught.value)


def test_every_class_too_small_is_named_with_every_class_count():
    needed = min_class_rows(SPLIT, cv_folds=5)
    labels = ["a"] * 30 + ["b"] * (needed - 1) + ["c"] * 3
    clean, _ = clean_table(_raw(labels), _contract(MULTI), source="raw.csv")
    with pytest.raises(DataError) as caught:
        check_class_counts(clean, _contract(MULTI), source="raw.csv", split=SPLIT, cv_folds=5)
    text = str(caught.value)
    assert f"class 'b' has {needed - 1} rows; class 'c' has 3 rows" in text
    assert "'b' 13, 'a' 30, 'c' 3" in text and f"at least {needed} rows of each class" in text


def test_a_regression_target_has_no_class_minimum():
    clean, _ = clean_table(_raw([str(i) for i in range(20)]), _contract(REGRESSION), source="raw.csv")
    check_class_counts(clean, _contract(REGRESSION), source="raw.csv", split=SPLIT, cv_folds=5)  # no refusal


def test_regression_bins_are_deciles_or_fewer_for_a_small_table():
    assert regression_bins(3000, needed=14) == MAX_REGRESSION_BINS == 10
    assert regression_bins(56, needed=14) == 4  # each bin still holds a class's minimum
    assert regression_bins(20, needed=14) == 1
    assert regression_strata(pd.Series(range(20), dtype="float64"), bins=1) is None
    strata = regression_strata(pd.Series([5.0] * 10 + list(range(10))), bins=4)
    assert strata is not None and strata.value_counts().tolist() == [5, 5, 5, 5]  # ties still give equal bins


def test_a_regression_split_spans_the_targets_range_in_every_split():
    y = pd.Series(range(1000), dtype="float64") ** 2  # skewed
    df = pd.DataFrame({"id": range(1000), "y": y})
    parts = split_data(df, target="y", train=0.7, val=0.15, test=0.15, seed=0, bins=10)
    assert [len(p) for p in parts.values()] == [700, 150, 150]
    deciles = pd.qcut(df["y"], 10, labels=False)
    for part in parts.values():  # every decile of the whole table is in each split, in its share
        shares = deciles.loc[part["id"]].value_counts(normalize=True)
        assert len(shares) == 10 and shares.between(0.09, 0.11).all()


@pytest.mark.parametrize("target", [MULTI, REGRESSION])
def test_the_quality_report_summarises_the_target_per_task(target):
    labels = ["a", "b", "c"] * 4 if target is MULTI else [str(i) for i in range(12)]
    raw = _raw(labels)
    clean, dropped = clean_table(raw, _contract(target), source="raw.csv")
    splits = {"train": clean.iloc[:6], "val": clean.iloc[6:9], "test": clean.iloc[9:]}
    report = summarise_quality(raw, clean, splits, contract=_contract(target), dropped=dropped)
    DataQuality.model_validate({**report, "source_sha256": "0" * 64})  # the artefact's layout
    train = report["class_balance"]["train"]
    if target is MULTI:
        assert train == {"rows": 6, "counts": {"b": 2, "a": 2, "c": 2}, "rates": dict.fromkeys("bac", 0.333333)}
    else:
        assert train == {"rows": 6, "min": 0.0, "q1": 1.25, "median": 2.5, "q3": 3.75, "max": 5.0, "mean": 2.5}
