"""Drafting a contract from a raw table (``tabrepro.contract.draft``), on small inline CSVs read by the raw reader.

Each test reads a few rows the way ``tabrepro contract draft`` does, drafts, and checks what the draft declares,
what it leaves out and why, and that every ambiguous column carries a DECIDE comment; the written YAML must load
as a contract and, where nothing is left to decide, accept the table it was drafted from.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tabrepro.contract.draft import Draft, check_name, default_name, draft_contract
from tabrepro.contract.draft_yaml import render_draft
from tabrepro.contract.spec import load_contract
from tabrepro.contract.table import check_table
from tabrepro.errors import ConfigError, DataError
from tabrepro.io.raw import read_raw

MIXED = """\
key,score,plan,active,flag,visits,note,y,constant,empty
A1,1.5,basic,Yes,1,3,"first note, long",yes,x,
A2,2.25,pro,No,0,0,"second note here",no,x,
A3,,pro,yes,0,12,"third note",yes,x,
A4,NA,basic,No,1,3,"fourth note",no,x,NA
A5,10,basic,No,0,7,"fifth one",no,x,
"""


def _draft(tmp_path: Path, text: str, *, target: str = "y", positive: str = "yes") -> tuple[Draft, Path]:
    path = tmp_path / "raw.csv"
    path.write_text(text, encoding="utf-8")
    raw = read_raw(path, fmt="csv")
    return draft_contract(raw, target=target, positive=positive, name="t", source=str(path), fmt="csv"), path


def _features(draft: Draft) -> dict[str, dict]:
    return {c.name: c.spec for c in draft.features}


def _decide(draft: Draft, name: str) -> str:
    return " ".join(next(c.decide for c in draft.features if c.name == name))


def test_types_levels_ranges_and_tokens(tmp_path: Path) -> None:
    draft, _ = _draft(tmp_path, MIXED)
    features = _features(draft)
    assert features["score"] == {"type": "numeric", "min": 1, "max": 10, "nullable": True}
    assert features["plan"] == {"type": "categorical", "values": ["basic", "pro"]}
    # tokens keep the data's case; "yes" and "Yes" both mean true
    assert features["active"] == {"type": "boolean", "true_values": ["Yes", "yes"], "false_values": ["No"]}
    assert features["visits"] == {"type": "numeric", "integer": True, "min": 0, "max": 12}
    assert draft.target == {"column": "y", "positive": "yes", "negative": "no"}
    assert draft.target_remark == "40.0 % positive"


def test_missing_tokens_are_found_and_make_columns_nullable(tmp_path: Path) -> None:
    draft, _ = _draft(tmp_path, MIXED)
    assert draft.missing_values == {"": ["score", "empty"], "NA": ["score", "empty"]}
    assert "nullable" not in _features(draft)["plan"]
    text = render_draft(draft)
    assert 'missing_values: ["", "NA"]  # found: "" in score, empty; "NA" in score, empty' in text
    assert "# DECIDE: these tokens mean missing in every column" in text


def test_id_candidates_and_ignored_columns(tmp_path: Path) -> None:
    draft, _ = _draft(tmp_path, MIXED)
    assert draft.id_candidates == ["key"]
    assert draft.ignored == {
        "note": "free text: 5 distinct values in 5 rows, no use as a feature",
        "constant": "constant: every present value is 'x'",
        "empty": "always missing",
    }
    assert not {"key", "note", "constant", "empty", "y"} & set(_features(draft))


def test_an_id_must_be_filled_in_every_row_and_a_key_not_a_measurement(tmp_path: Path) -> None:
    text = "code,num,weight,y\nc1,1,0.5,yes\nc2,2,0.75,no\n,3,1.25,yes\nc4,4,2.5,no\n"
    draft, _ = _draft(tmp_path, text)
    assert draft.id_candidates == ["num"]  # whole numbers, unique, never empty; "code" has a blank, weight is a float
    rendered = render_draft(draft)
    assert "id_column: num  # unique and non-empty in every row" in rendered


def test_several_id_candidates_ask_which_is_the_key(tmp_path: Path) -> None:
    draft, _ = _draft(tmp_path, "a,b,x,y\nk1,1,p,yes\nk2,2,q,no\nk3,3,p,yes\n")
    assert draft.id_candidates == ["a", "b"]
    assert "# DECIDE: b too are unique and non-empty in every row (not declared); which is the key?" in (
        render_draft(draft)
    )


def test_ambiguous_columns_are_drafted_with_what_to_decide(tmp_path: Path) -> None:
    draft, _ = _draft(tmp_path, MIXED)
    assert "integer with 4 distinct values (0 .. 12)" in _decide(draft, "visits")
    assert "codes of categories" in _decide(draft, "visits")
    assert 'only "0" and "1" occur: a flag (boolean, as drafted) or a count' in _decide(draft, "flag")
    assert _decide(draft, "plan") == ""
    assert _decide(draft, "score") == ""  # not integer: a measurement, nothing to decide


def test_a_few_odd_tokens_in_a_numeric_column_are_named_not_swallowed(tmp_path: Path) -> None:
    rows = "".join(f"{v},{'yes' if i % 2 else 'no'}\n" for i, v in enumerate([*(i % 13 for i in range(39)), "unknown"]))
    draft, _ = _draft(tmp_path, "amount,y\n" + rows)
    assert _features(draft)["amount"]["type"] == "numeric"
    assert "not numbers: 'unknown' (1 rows): add them to missing_values" in _decide(draft, "amount")


def test_levels_differing_only_in_case_are_flagged(tmp_path: Path) -> None:
    draft, _ = _draft(tmp_path, "city,y\nParis,yes\nparis,no\nRome,yes\nRome,no\nParis,no\n")
    assert _features(draft)["city"]["values"] == ["Paris", "Rome", "paris"]
    assert "differ only in case [['Paris', 'paris']]" in _decide(draft, "city")


def test_rounding_outward_keeps_every_observed_value() -> None:
    from tabrepro.contract.draft import _outward

    assert _outward(771.97, 73554.2, integer=False) == (0, 74000)
    assert _outward(0.1667, 80, integer=False) == (0, 80)
    assert _outward(-0.034, 0.56, integer=False) == (-0.04, 0.56)
    assert _outward(1, 41, integer=True) == (1, 41)
    assert _outward(3, 1234, integer=True) == (0, 1300)


def test_the_written_yaml_loads_and_accepts_its_own_table(tmp_path: Path) -> None:
    draft, path = _draft(tmp_path, "sex,age,y\nf,30,yes\nm,,no\nf,41.5,no\nm,7,yes\n")
    text = render_draft(draft)
    contract = load_contract(yaml.safe_load(text), where=str(path))
    assert contract.id_column is None
    assert contract.features["age"].nullable
    parsed = check_table(read_raw(path, fmt="csv", contract=contract), contract, source=str(path))
    assert len(parsed) == 4


def test_odd_column_names_and_tokens_are_quoted(tmp_path: Path) -> None:
    draft, _ = _draft(tmp_path, 'No,"a: b",y\nYes,"x, ""q""",no\nNo,"x, ""q""",yes\nYes,z,no\n', target="y")
    spec = yaml.safe_load(render_draft(draft))
    assert spec["features"]["No"] == {"type": "boolean", "true_values": ["Yes"], "false_values": ["No"]}
    assert spec["features"]["a: b"] == {"type": "categorical", "values": ['x, "q"', "z"]}


def test_a_target_with_missing_labels_is_drafted_to_drop_them_with_a_question(tmp_path: Path) -> None:
    draft, _ = _draft(tmp_path, "x,y\n1.5,yes\n2.5,\n3.5,no\n")
    assert draft.target["missing"] == "drop"
    assert "DECIDE: 1 row(s) have no label" in render_draft(draft)


@pytest.mark.parametrize(
    ("target", "positive", "message"),
    [
        ("z", "yes", "--target 'z' is not a column; columns: x, y"),
        ("y", "Yes", "--positive 'Yes' is not a label of 'y'"),
        ("x", "1", "target column 'x' has 3 labels"),
    ],
)
def test_a_bad_target_is_refused_naming_it(tmp_path: Path, target: str, positive: str, message: str) -> None:
    with pytest.raises(DataError, match="raw.csv: ") as caught:
        _draft(tmp_path, "x,y\n1,yes\n2,no\n3,no\n", target=target, positive=positive)
    assert message in str(caught.value)


def test_names() -> None:
    assert default_name("data/raw/my table-v2.csv") == "my_table-v2"
    assert check_name("titanic") == "titanic"
    with pytest.raises(ConfigError, match="--name '../x'"):
        check_name("../x")
