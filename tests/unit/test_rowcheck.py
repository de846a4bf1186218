"""Row-level checks of raw text by the contract: what is accepted, what is refused and why, row by row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tabrepro.contract.ids import hash_texts
from tabrepro.contract.records import build_record_model
from tabrepro.contract.rows import SeenIds, check_rows, require_columns
from tabrepro.contract.table import ContractViolation, check_table, parse_table
from tabrepro.errors import DataError

GOOD = {"id": "a1", "age": "30", "spend": "10.5", "plan": "basic", "active": "Yes", "y": "yes"}


def _rows(*changes: dict[str, str | None]) -> pd.DataFrame:
    return pd.DataFrame([{**GOOD, "id": f"r{i}", **c} for i, c in enumerate(changes)], dtype="str")


def test_clean_rows_are_parsed_like_parse_table(tiny_raw, tiny_contract):
    checked = check_rows(tiny_raw, tiny_contract)
    expected, _ = parse_table(tiny_raw, tiny_contract)
    assert checked.rejects.empty and checked.rejects_by_column == {}
    assert checked.valid.index.tolist() == [1, 2, 3, 4, 5, 6]
    for name in ("age", "spend", "active"):
        assert checked.valid[name].dtype == np.float64
        np.testing.assert_array_equal(checked.valid[name].to_numpy(), expected[name].to_numpy())
    assert checked.valid["plan"].astype(str).tolist() == expected["plan"].tolist()
    assert np.isnan(checked.valid["spend"].iloc[1])  # " " is a missing token in a nullable column


@pytest.mark.parametrize(
    ("change", "column", "reason"),
    [
        ({"age": "five"}, "age", "age: expected a number, got 'five'"),
        ({"age": "30.5"}, "age", "age: expected an integer between 0 and 120, got '30.5'"),
        ({"age": "121"}, "age", "age: expected an integer between 0 and 120, got '121'"),
        ({"spend": "-0.5"}, "spend", "spend: expected a number >= 0, got '-0.5'"),
        ({"spend": "nan"}, "spend", "spend: expected a number, got 'nan'"),
        ({"plan": "gold"}, "plan", "plan: expected one of ['basic', 'pro'], got 'gold'"),
        ({"active": "maybe"}, "active", "active: expected one of ['Yes', 'No'], got 'maybe'"),
        ({"age": " "}, "age", "age: missing value in a column that may not be missing, got ' '"),
        ({"plan": None}, "plan", "plan: missing value in a column that may not be missing, got null"),
    ],
)
def test_each_refusal_names_column_and_value(tiny_contract, change, column, reason):
    checked = check_rows(_rows({}, change, {}), tiny_contract, first_number=2, number_label="line")
    assert checked.valid["id"].tolist() == ["r0", "r2"]
    assert checked.rejects.to_dict("records") == [{"line": 3, "id": "r1", "reason": reason}]
    assert checked.rejects_by_column == {column: 1}


def test_every_failing_column_of_a_row_in_contract_order(tiny_contract):
    checked = check_rows(_rows({"active": "?", "age": "x", "plan": "gold"}), tiny_contract)
    assert checked.rejects["reason"].tolist() == [
        "age: expected a number, got 'x'; plan: expected one of ['basic', 'pro'], got 'gold'; "
        "active: expected one of ['Yes', 'No'], got '?'"
    ]
    assert checked.valid.empty
    assert checked.rejects_by_column == {"age": 1, "plan": 1, "active": 1}


def test_target_is_optional_and_extra_columns_ignored(tiny_contract):
    checked = check_rows(_rows({}, {}).drop(columns="y").assign(notes="n"), tiny_contract)
    assert list(checked.valid.columns) == ["id", "age", "spend", "plan", "active"]
    assert len(checked.valid) == 2


def test_missing_columns_are_named(tiny_contract):
    with pytest.raises(DataError, match=r"missing column\(s\) \['age', 'plan'\]"):
        require_columns(["id", "spend", "active"], tiny_contract, source="x.csv")
    with pytest.raises(DataError, match=r"\['plan'\]"):
        check_rows(_rows({}).drop(columns="plan"), tiny_contract)


def test_empty_chunk(tiny_contract):
    checked = check_rows(_rows({}).iloc[:0], tiny_contract)
    assert checked.valid.empty and checked.rejects.empty


def test_typed_and_dictionary_columns_read_as_their_text(tiny_contract):
    """Parquet hands over numbers and dictionary-encoded text; 30.0 for an integer column is accepted."""
    table = pa.table(
        {
            "id": ["a", "b", "c"],
            "age": pa.array([30.0, 41.0, 2.5]),
            "spend": pa.array([1.5, None, 3.0]),
            "plan": pa.array(["basic", "pro", "pro"]).dictionary_encode(),
            "active": pa.array(["Yes", "No", "No"]).dictionary_encode(),
        }
    )
    checked = check_rows(table, tiny_contract)
    assert checked.valid["age"].tolist() == [30.0, 41.0]
    assert np.isnan(checked.valid["spend"].iloc[1])  # a null is missing
    assert checked.rejects["reason"].tolist() == ["age: expected an integer between 0 and 120, got '2.5'"]


# Edge cases where the service's record model and prepare agree; scoring must agree with both.
EDGE_CASES = [
    {},
    {"age": " 30 "},
    {"age": "30.0"},
    {"age": "3e1"},
    {"age": "+30"},
    {"age": "0"},
    {"age": "120"},
    {"age": "-0.5"},
    {"age": "1e3"},
    {"age": "1_0"},
    {"spend": "1_000.5"},
    {"age": "inf"},
    {"age": ""},
    {"spend": ""},
    {"spend": "\t"},
    {"spend": "nan"},
    {"spend": ".5"},
    {"spend": "1,5"},
    {"plan": " pro "},
    {"plan": "Pro"},
    {"active": " No"},
    {"active": "yes"},
    {"active": "1"},
]


def _accepted_by_prepare(row: pd.DataFrame, contract) -> bool:
    try:
        check_table(row, contract, source="row")
    except ContractViolation:
        return False
    return True


@pytest.mark.parametrize("change", EDGE_CASES, ids=lambda c: repr(c) or "good")
def test_accepts_what_service_and_prepare_accept(tiny_contract, change):
    row = _rows(change)
    record = row.drop(columns="y").iloc[0].to_dict()
    expected, _ = build_record_model(tiny_contract).parse(record)
    assert (expected is not None) == _accepted_by_prepare(row, tiny_contract)  # the two references agree
    checked = check_rows(row, tiny_contract)
    assert (len(checked.valid) == 1) == (expected is not None)
    if expected is not None:
        got = checked.valid.iloc[0]
        for name in ("age", "spend", "active"):
            assert got[name] == expected[name] or (np.isnan(got[name]) and expected[name] is None)
        assert got["plan"] == expected["plan"]


def test_missing_and_repeated_ids_are_refused_as_prepare_refuses_them(tiny_contract):
    seen = SeenIds()
    first = check_rows(_rows({"id": " a "}, {"id": "b"}, {"id": ""}), tiny_contract, first_number=2, seen=seen)
    assert first.valid["id"].tolist() == ["a", "b"]  # ids are stripped
    later = check_rows(
        _rows({"id": "c"}, {"id": "a"}, {"id": "c"}, {"id": None}), tiny_contract, first_number=5, seen=seen
    )
    assert first.rejects["reason"].tolist() == ["id: missing value in a column that may not be missing, got ''"]
    assert later.rejects.fillna({"id": ""}).to_dict("records") == [
        {
            "row": 6,
            "id": "a",
            "reason": "id: duplicate values in a column that must be unique, got 'a' (first at row 2)",
        },
        {
            "row": 7,
            "id": "c",
            "reason": "id: duplicate values in a column that must be unique, got 'c' (first at row 5)",
        },
        {"row": 8, "id": "", "reason": "id: missing value in a column that may not be missing, got null"},
    ]
    assert later.valid["id"].tolist() == ["c"] and later.rejects_by_column == {"id": 3}
    with pytest.raises(ContractViolation, match="column 'id': duplicate value"):
        check_table(pd.concat([_rows({"id": "a"}), _rows({"id": " a"})], ignore_index=True), tiny_contract, source="t")


def test_an_id_hashes_alike_in_fixed_and_mixed_width_chunks(tiny_contract):
    """Fixed-width ids take a faster path to the same hash: a repeat across such chunks is still found."""
    fixed = [f"{i:05d}-ABCD" for i in range(300)]
    mixed = [*fixed, "x", "a much longer id than the others"]
    assert (hash_texts(pa.array(fixed)) == hash_texts(pa.array(mixed))[:300]).all()
    assert len(set(hash_texts(pa.array(mixed)).tolist())) == len(mixed)
    seen = SeenIds()
    check_rows(_rows(*({"id": i} for i in fixed[:3])), tiny_contract, seen=seen)
    later = check_rows(_rows({"id": "x"}, {"id": fixed[1]}), tiny_contract, first_number=4, seen=seen)
    assert later.rejects["reason"].tolist() == [
        f"id: duplicate values in a column that must be unique, got '{fixed[1]}' (first at row 2)"
    ]
