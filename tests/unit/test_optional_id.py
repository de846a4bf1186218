"""A contract without an id column: rows are keyed by their position in the source, records by their index."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabrepro.contract.grammar import require_columns
from tabrepro.contract.records import build_record_model
from tabrepro.contract.rows import check_rows
from tabrepro.contract.spec import DataContract, load_contract
from tabrepro.contract.table import ContractViolation, check_table, parse_table
from tabrepro.errors import ConfigError, DataError
from tabrepro.io.raw import read_raw
from tabrepro.serving.predlog import LoggedRequest, ModelAnswers, format_lines, record_ids
from tabrepro.serving.rollout import split_canary
from tests.conftest import TINY_CONTRACT

NO_ID = {k: v for k, v in TINY_CONTRACT.items() if k != "id_column"}
GOOD = {"age": "30", "spend": "10.5", "plan": "basic", "active": "Yes", "y": "yes"}


@pytest.fixture
def contract() -> DataContract:
    return load_contract(NO_ID)


def _raw(*changes: dict[str, str | None], first_line: int = 2) -> pd.DataFrame:
    rows = [{**GOOD, "y": "yes" if i % 2 else "no", **c} for i, c in enumerate(changes)]
    return pd.DataFrame(rows, dtype="str").set_axis(pd.RangeIndex(first_line, first_line + len(rows)))


# the contract


@pytest.mark.parametrize("section", [NO_ID, {**NO_ID, "id_column": None}])
def test_a_contract_may_declare_no_id_and_its_rows_are_keyed_by_row(section):
    contract = load_contract(section)
    assert contract.id_column is None and contract.id_columns == []
    assert contract.key_column == "row"
    assert contract.columns == ["age", "spend", "plan", "active", "y"]
    assert contract.grammar.id is None


def test_a_declared_id_is_the_key(tiny_contract):
    assert tiny_contract.key_column == "id" and tiny_contract.columns[0] == "id"
    assert tiny_contract.grammar.id is not None and tiny_contract.grammar.id.name == "id"


def test_the_row_key_never_clashes_with_a_feature_or_the_target():
    features = {**NO_ID["features"], "row": {"type": "numeric"}}
    assert load_contract({**NO_ID, "features": features}).key_column == "_row"
    target = {**NO_ID["target"], "column": "_row"}
    assert load_contract({**NO_ID, "features": features, "target": target}).key_column == "__row"


def test_an_empty_id_column_name_is_refused_naming_the_key():
    with pytest.raises(ConfigError, match="id_column"):
        load_contract({**NO_ID, "id_column": ""})


def test_the_contract_round_trips_through_its_json_dump(contract):
    """The packaged manifest holds ``model_dump``; the service re-reads it."""
    again = load_contract(json.loads(json.dumps(contract.model_dump(mode="json"))))
    assert again.id_column is None and again.key_column == "row"


def test_require_columns_asks_only_for_features_without_an_id(contract):
    require_columns(["age", "spend", "plan", "active"], contract, source="x.csv")
    with pytest.raises(DataError, match=r"missing column\(s\) \['plan'\]"):
        require_columns(["age", "spend", "active"], contract, source="x.csv")


# the table adapter (prepare, drift)


def test_check_table_keys_each_row_by_its_line(contract):
    parsed = check_table(_raw({}, {}, {"spend": " "}, first_line=2), contract, source="raw.csv", row_label="line")
    assert parsed.columns.tolist() == ["row", "age", "spend", "plan", "active", "y"]
    assert parsed["row"].dtype == np.int64 and parsed["row"].tolist() == [2, 3, 4]
    assert np.isnan(parsed["spend"].iloc[2])


def test_an_undeclared_id_like_column_is_ignored_and_not_required(contract):
    raw = _raw({}, {}).assign(customer=["c1", "c1"])  # a repeated key the contract does not declare: no rule
    parsed = check_table(raw, contract, source="raw.csv")
    assert "customer" not in parsed.columns and parsed["row"].tolist() == [2, 3]


def test_check_table_without_an_id_still_reports_every_problem_by_line(contract):
    with pytest.raises(ContractViolation) as caught:
        check_table(_raw({}, {"age": "five"}, {}), contract, source="raw.csv", row_label="line")
    assert "column 'age': expected a number (1 rows; line 3: 'five')" in str(caught.value)
    assert [p.column for p in caught.value.problems] == ["age"]


def test_parse_table_adds_the_row_key(contract):
    parsed, problems = parse_table(_raw({}, {"active": "maybe"}, first_line=7), contract)
    assert parsed["row"].tolist() == [7, 8] and [p.column for p in problems] == ["active"]


def test_read_raw_then_check_table_keys_rows_by_csv_line_and_parquet_row(contract, tmp_path: Path):
    frame = pd.DataFrame([GOOD, {**GOOD, "y": "no"}, GOOD], dtype="str")
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet", index=False)
    by_line = check_table(read_raw(tmp_path / "t.csv", fmt="csv", contract=contract), contract, source="t.csv")
    by_row = check_table(read_raw(tmp_path / "t.parquet", fmt="parquet", contract=contract), contract, source="t")
    assert by_line["row"].tolist() == [2, 3, 4] and by_row["row"].tolist() == [1, 2, 3]


# the rows adapter (batch scoring)


def test_check_rows_keys_valid_rows_by_number_and_rejects_have_no_id(contract):
    checked = check_rows(_raw({}, {"plan": "gold"}, {}), contract, first_number=10, number_label="line")
    assert checked.valid["row"].tolist() == [10, 12]
    assert checked.valid.index.tolist() == [10, 12]
    assert checked.rejects.to_dict("records") == [
        {"line": 11, "id": None, "reason": "plan: expected one of ['basic', 'pro'], got 'gold'"}
    ]


def test_check_rows_without_an_id_needs_no_id_column_and_never_refuses_a_repeat(contract):
    raw = _raw({}, {})  # two identical rows: without an id, nothing says they are one
    checked = check_rows(raw.drop(columns="y"), contract)
    assert checked.rejects.empty and checked.valid["row"].tolist() == [1, 2]


# the record adapter (the service)


def test_records_without_an_id_are_parsed_and_an_id_field_is_unknown(contract):
    model = build_record_model(contract)
    record = {"age": 30, "spend": None, "plan": "pro", "active": "No"}
    parsed, errors = model.parse_records([record, record])
    assert errors == [] and parsed == [{"age": 30.0, "spend": None, "plan": "pro", "active": 0.0}] * 2
    _, errors = model.parse_records([{**record, "id": "a1"}])
    assert [str(e) for e in errors] == ["records[0].id: unknown field"]


def test_a_declared_id_is_still_unique_and_typed_in_a_request(tiny_contract):
    model = build_record_model(tiny_contract)
    record = {"age": 30, "spend": None, "plan": "pro", "active": "No"}
    _, errors = model.parse_records([{**record, "id": "a1"}, {**record, "id": " a1 "}, {**record, "id": 1.5}])
    assert [e.reason for e in errors] == ["duplicate_id", "invalid_value"]
    assert "first at records[0]" in str(errors[0])


# the prediction log and the canary


def test_the_log_records_a_record_without_an_id_by_its_index():
    records = [{"age": 30.0, "plan": "pro"}, {"age": 41.0, "plan": None}]
    answers = [ModelAnswers("v1", "aa" * 32, "primary", True, 0.5, [0, 1], np.array([0.7, 0.1]))]
    lines = [json.loads(b) for b in format_lines(LoggedRequest(datetime.now(UTC), "r" * 32, None, records, answers))]
    assert [(x["id"], x["index"], x["inputs"], x["label"]) for x in lines] == [
        (None, 0, records[0], 1),
        (None, 1, records[1], 0),
    ]


def test_record_ids_and_the_canary_keep_records_without_an_id_on_the_primary():
    records = [{"id": "a"}, {"id": None}, {"id": "c"}]
    assert record_ids(records, "id") == ["a", None, "c"]
    assert record_ids(records, None) == [None, None, None]
    assert split_canary(record_ids(records, None), 100.0) == ([0, 1, 2], [])
    assert split_canary(record_ids(records, "id"), 100.0) == ([1], [0, 2])
