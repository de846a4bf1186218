"""The table adapter: raw text parsed and judged by the contract's grammar, every problem in one report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabrepro.contract.table import ContractViolation, check_table, parse_table


def _check(raw: pd.DataFrame, contract) -> pd.DataFrame:
    return check_table(raw, contract, source="raw.csv")


def test_parse_types_and_missing_tokens(tiny_raw, tiny_contract):
    parsed, problems = parse_table(tiny_raw, tiny_contract)
    assert problems == []
    assert parsed["age"].dtype == np.float64
    assert np.isnan(parsed.loc[1, "spend"])  # " " is blank after stripping -> missing
    assert parsed["active"].tolist() == [1.0, 0.0, 1.0, 1.0, 0.0, 0.0]
    assert pd.api.types.is_string_dtype(parsed["plan"])
    pd.testing.assert_frame_equal(_check(tiny_raw, tiny_contract), parsed)  # and the clean table passes as parsed


def test_extra_columns_are_dropped(tiny_raw, tiny_contract):
    parsed, _ = parse_table(tiny_raw.assign(notes="x"), tiny_contract)
    assert "notes" not in parsed.columns


def test_wrong_type_names_column_and_value(tiny_raw, tiny_contract):
    raw = tiny_raw.copy()
    raw.loc[2, "age"] = "thirty"
    with pytest.raises(ContractViolation) as err:
        _check(raw, tiny_contract)
    assert "column 'age': expected a number (1 rows; row 2: 'thirty')" in str(err.value)
    assert err.value.problems[0].messages == ("expected a number, got 'thirty'",)
    # the unparsed cell is reported once, not again as "missing"
    assert len(err.value.problems) == 1


def test_missing_column(tiny_raw, tiny_contract):
    with pytest.raises(ContractViolation, match="column 'plan': column is missing"):
        _check(tiny_raw.drop(columns="plan"), tiny_contract)


def test_value_out_of_range(tiny_raw, tiny_contract):
    raw = tiny_raw.copy()
    raw.loc[3, "age"] = "130"
    with pytest.raises(ContractViolation, match=r"column 'age': expected an integer between 0 and 120 .*'130'"):
        _check(raw, tiny_contract)


def test_non_integer_value(tiny_raw, tiny_contract):
    raw = tiny_raw.copy()
    raw.loc[0, "age"] = "30.5"
    with pytest.raises(ContractViolation, match=r"column 'age': expected an integer between 0 and 120 .*'30\.5'"):
        _check(raw, tiny_contract)


def test_unknown_category(tiny_raw, tiny_contract):
    raw = tiny_raw.copy()
    raw.loc[4, "plan"] = "gold"
    with pytest.raises(ContractViolation, match=r"column 'plan': expected one of \['basic', 'pro'\] .*'gold'"):
        _check(raw, tiny_contract)


def test_unmapped_boolean_token(tiny_raw, tiny_contract):
    raw = tiny_raw.copy()
    raw.loc[0, "active"] = "maybe"
    with pytest.raises(ContractViolation, match=r"column 'active': expected one of \['Yes', 'No'\]"):
        _check(raw, tiny_contract)


def test_third_target_label(tiny_raw, tiny_contract):
    raw = tiny_raw.copy()
    raw.loc[5, "y"] = "unsure"
    with pytest.raises(ContractViolation, match=r"column 'y': expected one of \['yes', 'no'\] .*'unsure'"):
        _check(raw, tiny_contract)


def test_duplicate_ids(tiny_raw, tiny_contract):
    raw = tiny_raw.copy()
    raw.loc[5, "id"] = "a1"
    with pytest.raises(ContractViolation, match="column 'id': duplicate values in a column that must be unique") as err:
        _check(raw, tiny_contract)
    assert err.value.problems[0].messages == (
        "duplicate values in a column that must be unique, got 'a1' (first at row 0)",
    )


def test_missing_value_in_non_nullable_column(tiny_raw, tiny_contract):
    raw = tiny_raw.copy()
    raw.loc[0, "age"] = ""
    with pytest.raises(ContractViolation, match="column 'age': missing value"):
        _check(raw, tiny_contract)


def test_empty_table(tiny_raw, tiny_contract):
    with pytest.raises(ContractViolation, match="no data rows"):
        _check(tiny_raw.iloc[:0], tiny_contract)


def test_every_problem_in_one_report(tiny_raw, tiny_contract):
    raw = tiny_raw.drop(columns="active")
    raw.loc[0, "age"] = "-1"
    raw.loc[1, "plan"] = "gold"
    raw.loc[2, "spend"] = "lots"
    with pytest.raises(ContractViolation) as err:
        _check(raw, tiny_contract)
    columns = {p.column for p in err.value.problems}
    assert columns == {"active", "age", "plan", "spend"}
    assert "4 problem(s)" in str(err.value)


def test_rows_are_labelled_in_the_report(tiny_raw, tiny_contract):
    raw = tiny_raw.copy()
    raw.index = pd.RangeIndex(2, len(raw) + 2)  # as read_raw does for CSV: index = line number
    raw.loc[4, "plan"] = "gold"
    with pytest.raises(ContractViolation, match="line 4: 'gold'"):
        check_table(raw, tiny_contract, source="raw.csv", row_label="line")
