"""The contract per task (issue 21): valid targets of each task, the refusals naming the full key, and
``contract draft`` proposing the task from the target column (with DECIDE lines when the data cannot settle it)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from tabrepro.contract.draft import draft_contract
from tabrepro.contract.draft_yaml import render_draft
from tabrepro.contract.spec import load_contract
from tabrepro.errors import ConfigError, DataError
from tabrepro.io.raw import read_raw
from tests.conftest import REPO, TINY_CONTRACT


def _load(target: dict):
    return load_contract({**TINY_CONTRACT, "target": target})


def test_valid_targets_of_every_task():
    assert _load({"column": "y", "positive": "yes", "negative": "no"}).target.labels == ("no", "yes")
    multi = _load({"column": "y", "task": "multiclass", "classes": ["b", "a", "c"]}).target
    assert multi.labels == ("b", "a", "c") and multi.is_classification
    reg = _load({"column": "y", "task": "regression", "min": 0, "unit": "EUR"}).target
    assert reg.labels == () and not reg.is_classification and reg.unit == "EUR"


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ({"column": "y", "task": "multiclass", "classes": ["a", "b"]}, "three or more labels"),
        ({"column": "y", "task": "multiclass", "classes": ["a", "b", "a"]}, "['a'] listed more than once"),
        ({"column": "y", "task": "regression", "positive": "yes"}, "positive: not a field of a regression target"),
        ({"column": "y", "task": "multiclass", "classes": ["a", "b", "c"], "unit": "x"}, "unit: not a field"),
        ({"column": "y", "task": "regression", "min": 5, "max": 1}, "empty range: min 5.0 > max 1.0"),
        ({"column": "y", "task": "ordinal"}, "target.task"),
    ],
)
def test_bad_targets_are_refused_naming_the_key(target: dict, message: str):
    with pytest.raises(ConfigError) as caught:
        _load(target)
    assert message in str(caught.value) and "target" in str(caught.value)


def _draft_file(name: str, target: str, **kw: str):
    raw = read_raw(REPO / "data/raw" / f"{name}.csv", fmt="csv")
    return draft_contract(raw, target=target, name=name, source=f"data/raw/{name}.csv", fmt="csv", **kw)


def test_penguins_draft_proposes_multiclass_with_sorted_classes():
    draft = _draft_file("penguins", "species")
    assert draft.target == {"column": "species", "task": "multiclass", "classes": ["Adelie", "Chinstrap", "Gentoo"]}
    assert draft.target_remark == "sorted; Adelie 44.2 %, Chinstrap 19.8 %, Gentoo 36.0 %"
    assert draft.target_decide == ()


@pytest.mark.parametrize(
    ("name", "target", "low", "high"), [("islr_wage", "wage", 20, 320), ("islr_carseats", "Sales", 0, 17)]
)
def test_regression_drafts_carry_the_observed_range_and_a_unit_to_fill_in(name, target, low, high):
    draft = _draft_file(name, target)
    assert draft.target == {"column": target, "task": "regression", "min": low, "max": high, "unit": ""}
    assert draft.target_decide == ('unit: the target\'s unit, for reports (e.g. "thousand USD")',)
    text = render_draft(draft)
    assert "  # DECIDE: unit:" in text and f"write conf/policy/{name}.yaml" in text
    assert load_contract(yaml.safe_load(text)).target.task == "regression"


def _draft(tmp_path: Path, column: list[str], **kw: str):
    path = tmp_path / "raw.csv"
    pd.DataFrame({"x": [str(i % 7) for i in range(len(column))], "y": column}).to_csv(path, index=False)
    return draft_contract(read_raw(path, fmt="csv"), target="y", name="t", source="raw.csv", fmt="csv", **kw)


def test_a_few_distinct_numbers_are_drafted_multiclass_with_a_question(tmp_path: Path):
    draft = _draft(tmp_path, [str(i % 4) for i in range(40)])
    assert draft.target["classes"] == ["0", "1", "2", "3"]
    assert "4 distinct numbers: classes" in draft.target_decide[0]
    assert "  # DECIDE: 4 distinct numbers" in render_draft(draft)


def test_many_labels_are_multiclass_with_a_question_and_two_labels_binary_rarer_positive(tmp_path: Path):
    many = _draft(tmp_path, [f"k{i % 25}" for i in range(100)])
    assert many.target["task"] == "multiclass" and "25 labels" in many.target_decide[0]
    two = _draft(tmp_path, ["a", "b", "b", "b"] * 5)
    assert two.target == {"column": "y", "positive": "a", "negative": "b"}
    assert "the rarer label 'a'" in two.target_decide[0]


def test_task_forced_and_its_refusals(tmp_path: Path):
    numbers = [str(i % 4) for i in range(40)]
    assert _draft(tmp_path, numbers, task="regression").target["task"] == "regression"
    with pytest.raises(DataError, match="not numbers"):
        _draft(tmp_path, ["a", "b", "c"] * 5, task="regression")
    with pytest.raises(DataError, match="a multiclass target needs three or more"):
        _draft(tmp_path, ["a", "b"] * 5, task="multiclass")
    with pytest.raises(DataError, match="--positive applies to a binary target"):
        _draft(tmp_path, numbers, task="multiclass", positive="1")


def test_a_binary_draft_keeps_its_layout(tmp_path: Path):
    text = render_draft(_draft(tmp_path, ["yes", "no"] * 10, positive="yes"))
    assert 'target:\n  column: "y"\n  positive: "yes"\n  negative: "no"  # 50.0 % positive\nfeatures:' in text
