"""The request model derived from the contract, record validation and ONNX feeds: no pandas involved."""

from __future__ import annotations

import numpy as np
import pytest

from tabrepro.contract.spec import build_record_model
from tabrepro.serving.runtime import feeds_from_records, validate_records

GOOD = {"id": "a1", "age": 30, "spend": "10.5", "plan": "basic", "active": "Yes"}


def test_valid_record_is_parsed_like_prepare_parses_it(tiny_contract):
    record = build_record_model(tiny_contract).model_validate(GOOD).model_dump()
    assert record == {"id": "a1", "age": 30.0, "spend": 10.5, "plan": "basic", "active": 1.0}


def test_missing_token_in_a_nullable_field_is_none(tiny_contract):
    record = build_record_model(tiny_contract).model_validate({**GOOD, "spend": " "}).model_dump()
    assert record["spend"] is None


@pytest.mark.parametrize(
    ("change", "field", "reason", "text"),
    [
        ({"age": 130}, "age", "out_of_range", "less than or equal to 120"),
        ({"age": 30.5}, "age", "invalid_value", "expected an integer"),
        ({"age": "thirty"}, "age", "invalid_value", "valid number"),
        ({"age": None}, "age", "invalid_value", "may not be missing"),
        ({"plan": "gold"}, "plan", "unknown_category", "'basic' or 'pro'"),
        ({"active": True}, "active", "invalid_value", "expected one of ['Yes', 'No']"),
        ({"colour": "red"}, "colour", "unknown_field", "unknown field"),
    ],
)
def test_each_bad_value_names_record_field_and_problem(tiny_contract, change, field, reason, text):
    model = build_record_model(tiny_contract)
    parsed, errors = validate_records([GOOD, {**GOOD, **change}], model)
    assert len(parsed) == 1
    assert [(e.index, e.field, e.reason) for e in errors] == [(1, field, reason)]
    assert text in str(errors[0])
    assert str(errors[0]).startswith(f"records[1].{field}: ")


def test_missing_field_and_non_object(tiny_contract):
    model = build_record_model(tiny_contract)
    record = dict(GOOD)
    del record["plan"]
    _, errors = validate_records([record, "not a record"], model)
    assert [(e.index, e.field, e.reason) for e in errors] == [(0, "plan", "missing_field"), (1, "*", "not_an_object")]


def test_feeds_have_one_column_per_feature(tiny_contract):
    model = build_record_model(tiny_contract)
    parsed, _ = validate_records([GOOD, {**GOOD, "spend": None, "active": "No"}], model)
    feeds = feeds_from_records(parsed, tiny_contract)
    assert set(feeds) == set(tiny_contract.features)
    assert feeds["age"].dtype == np.float32
    assert feeds["age"].shape == (2, 1)
    assert np.isnan(feeds["spend"][1, 0])
    assert feeds["active"][:, 0].tolist() == [1.0, 0.0]
    assert feeds["plan"].dtype == object
