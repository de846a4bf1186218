"""One list of cases, every adapter of the contract's grammar: the same verdict and the same message everywhere.

Each case is a JSON value put into one field of an otherwise good row. It goes through the record adapter (the
value itself, as the service receives it), the service's request path (``validate_records``), the rows adapter
(a one-row Arrow chunk of its raw token) and the table adapter (a one-row CSV and a one-row Parquet file read by
the one raw reader and checked as ``prepare`` checks). A JSON value's raw token is what it would be in a CSV cell
(``json_token``: a string as itself, any other value as its JSON text). A CSV cannot hold a null (its empty cell
is the case ``""``) nor a line break inside a cell, so those cases skip the CSV file.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from tabrepro.contract.columns import check_numbers
from tabrepro.contract.grammar import NOT_A_NUMBER, json_token
from tabrepro.contract.records import build_record_model
from tabrepro.contract.rows import SeenIds, check_rows
from tabrepro.contract.spec import DataContract, load_contract
from tabrepro.contract.table import ContractViolation, check_table
from tabrepro.io.raw import read_raw
from tabrepro.serving.runtime import validate_records

CONTRACT = load_contract(
    {
        "name": "every_type",
        "source": "raw.csv",
        "id_column": "key",
        "target": {"column": "t", "positive": "yes", "negative": "no"},
        "missing_values": ["", "NA", "?"],
        "features": {
            "n": {"type": "numeric"},
            "i": {"type": "numeric", "integer": True, "min": 0, "max": 120},
            "z": {"type": "numeric", "nullable": True, "min": 0},
            "b": {"type": "boolean", "true_values": ["Y", "1"], "false_values": ["N", "0"]},
            "c": {"type": "categorical", "values": ["a", "b b"]},
            "cn": {"type": "categorical", "values": ["a", "b b"], "nullable": True},
        },
    }
)
GOOD = {"key": "k0", "n": "1.5", "i": "30", "z": "2", "b": "Y", "c": "a", "cn": "b b"}

# JSON texts: what a client sends; the same value (its token) stands in the files
VALUES = [
    *['"five"', '"30"', '" 30 "', '"\\t30\\n"', '"30.0"', '"3e1"', '"+30"', '"-0"', '"-0.0"', "-0.0", '".5"', '"5."'],
    *['"1e3"', '"1E+2"', '"00012"', "30", "30.5", "120", "121", "-1", "0", "1", "1.0", "0.5", "1e16", "-3.25e-2"],
    *["1e400", "-1e400", "1" + "0" * 30, "123456789012345678901234567890.5", '"1e400"', '"1e-400"'],
    *['"nan"', '"NaN"', '"inf"', '"-inf"', '"Infinity"', '"1_000"', '"0x10"', '"1,5"', '"1 000"', '"\\u0663"'],
    *['"\\u00a030"', '"e5"', '"."', '"+"', '"--1"', '"1e"'],
    *["null", '""', '" "', '"\\t"', '"NA"', '" NA "', '"?"', '"na"'],
    *["true", "false", "[]", "[1, 2]", '["a"]', "{}", '{"a": 1}', '{"n": [null]}'],
    *['"a"', '" a "', '"A"', '"b b"', '"b  b"', '"c"', '"Y"', '" Y"', '"y"', '"1"', '"N"', '"0"', '"Yes"'],
    '"' + "x" * 60 + '"',
]
FIELDS = list(CONTRACT.features)

Outcome = tuple[bool, tuple[str, ...], str | None]  # accepted, messages "field: message", the parsed value


def _value(parsed: Any) -> str | None:
    """A parsed value, comparable across adapters: None for missing, repr for numbers (so -0.0 stays -0.0)."""
    if parsed is None or (isinstance(parsed, float) and math.isnan(parsed)):
        return None
    return repr(float(parsed)) if isinstance(parsed, int | float | np.floating) else str(parsed)


def by_record(field: str, value: Any) -> Outcome:
    parsed, errors = build_record_model(CONTRACT).parse({**GOOD, field: value})
    messages = tuple(f"{e.field}: {e.problem}" for e in errors)
    return parsed is not None, messages, _value(parsed[field]) if parsed else None


def by_service(field: str, value: Any) -> Outcome:
    parsed, errors = validate_records([{**GOOD, field: value}], build_record_model(CONTRACT))
    prefix = "records[0]."
    assert all(str(e).startswith(prefix) for e in errors)
    return (
        bool(parsed),
        tuple(str(e).removeprefix(prefix) for e in errors),
        _value(parsed[0][field]) if parsed else None,
    )


def by_rows(field: str, token: str | None) -> Outcome:
    chunk = pa.table({name: pa.array([token if name == field else GOOD[name]], pa.string()) for name in GOOD})
    checked = check_rows(chunk, CONTRACT)
    if len(checked.valid):
        return True, (), _value(checked.valid[field].iloc[0])
    return False, tuple(checked.rejects["reason"].iloc[0].split("; ")), None


def by_file(path: Path, field: str, token: str | None) -> Outcome:
    row = pa.table({name: pa.array([value], pa.string()) for name, value in {**GOOD, field: token, "t": "yes"}.items()})
    if path.suffix == ".csv":
        pacsv.write_csv(row, path)
    else:
        pq.write_table(row, path)
    raw = read_raw(path, fmt=path.suffix[1:], contract=CONTRACT)
    try:
        parsed = check_table(raw, CONTRACT, source=str(path), row_label="line")
    except ContractViolation as exc:
        problems = exc.problems
    else:
        return True, (), _value(parsed[field].iloc[0])
    assert all(len(p.messages) == len(p.rows) == 1 for p in problems), problems
    return False, tuple(f"{p.column}: {m}" for p in problems for m in p.messages), None


def _cases() -> list[tuple[str, str]]:
    return [(field, text) for field in FIELDS for text in VALUES]


@pytest.mark.parametrize(("field", "text"), _cases(), ids=lambda v: v[:20])
def test_every_adapter_gives_the_same_verdict_and_message(field: str, text: str, tmp_path: Path) -> None:
    value = json.loads(text)
    token = json_token(value)
    outcomes: dict[str, Outcome] = {
        "record": by_record(field, value),
        "service": by_service(field, value),
        "rows": by_rows(field, token),
        "parquet": by_file(tmp_path / "row.parquet", field, token),
    }
    if token is not None and "\n" not in token and "\r" not in token:
        outcomes["csv"] = by_file(tmp_path / "row.csv", field, token)
    assert len(set(outcomes.values())) == 1, outcomes
    accepted, messages, _ = outcomes["record"]
    assert accepted != bool(messages) and all(m.startswith(f"{field}: ") for m in messages)


def test_the_decisions_written_in_the_grammar() -> None:
    """The documented edge cases, as the service sees them (the test above holds every adapter to the same)."""
    verdict: Callable[[str, Any], Outcome] = by_record
    assert verdict("n", " 1 ")[2] == "1.0"  # stripped
    assert verdict("n", "-0")[2] == "-0.0" and verdict("i", -0.0)[0]  # negative zero is zero, sign kept
    assert verdict("n", 10**30)[2] == "1e+30"
    for refused in ("inf", "nan", "Infinity", "1_000", "0x10", "1,5", "\u00a030", "\u0663", 1e400, float("nan")):
        assert verdict("n", refused)[1] == (f"n: expected a number, got {json_token(refused)!r}",), refused
    assert verdict("i", 30.5)[1] == ("i: expected an integer between 0 and 120, got '30.5'",)
    assert verdict("c", " b b ")[2] == "b b" and not verdict("c", "B B")[0]
    assert verdict("b", 1)[2] == "1.0" and verdict("b", 0)[2] == "0.0"  # JSON 1/0 are the tokens "1"/"0"
    assert verdict("b", True)[1] == ("b: expected one of ['Y', '1', 'N', '0'], got 'true'",)
    assert verdict("z", "NA")[0] and verdict("z", "NA")[2] is None  # a missing token in a nullable column
    assert verdict("n", "?")[1] == ("n: missing value in a column that may not be missing, got '?'",)


ID_CASES = ['"k1"', '" k1 "', "7", '"007"', '"a b"', '"' + "k" * 50 + '"']
ID_MISSING = ["null", '""', '"  "', '"NA"', '"?"']  # a table refuses a missing id; a request need not carry one
ID_JSON_TYPED = ["1.5", "7.0", "true", "[1]", '{"a": 1}']  # a request refuses these; a file holds their text


def _id_outcomes(text: str, tmp_path: Path) -> dict[str, Outcome]:
    value = json.loads(text)
    token = json_token(value)
    outcomes = {
        "record": by_record("key", value),
        "service": by_service("key", value),
        "rows": by_rows("key", token),
        "parquet": by_file(tmp_path / "row.parquet", "key", token),
    }
    if token is not None:
        outcomes["csv"] = by_file(tmp_path / "row.csv", "key", token)
    return outcomes


@pytest.mark.parametrize("text", ID_CASES)
def test_ids_agree_everywhere(text: str, tmp_path: Path) -> None:
    outcomes = _id_outcomes(text, tmp_path)
    assert len(set(outcomes.values())) == 1, outcomes
    assert outcomes["record"][0] and outcomes["record"][2] == json_token(json.loads(text)).strip()


@pytest.mark.parametrize("text", ID_MISSING)
def test_a_missing_id_is_refused_in_tables_and_allowed_in_requests(text: str, tmp_path: Path) -> None:
    outcomes = _id_outcomes(text, tmp_path)
    assert outcomes["record"] == outcomes["service"] == (True, (), None)
    tables = {name: o for name, o in outcomes.items() if name not in ("record", "service")}
    message = f"key: missing value in a column that may not be missing, got {_shown(json.loads(text))}"
    assert set(tables.values()) == {(False, (message,), None)}, tables


@pytest.mark.parametrize("text", ID_JSON_TYPED)
def test_a_json_typed_id_is_refused_in_requests_and_read_as_text_in_tables(text: str, tmp_path: Path) -> None:
    outcomes = _id_outcomes(text, tmp_path)
    token = json_token(json.loads(text))
    message = f"key: expected text or a whole number as the id, got {token!r}"
    assert outcomes["record"] == outcomes["service"] == (False, (message,), None)
    tables = {name: o for name, o in outcomes.items() if name not in ("record", "service")}
    assert set(tables.values()) == {(True, (), token)}, tables


def _shown(value: str | None) -> str:
    return "null" if value is None else repr(value)


def test_a_repeated_id_is_refused_by_every_adapter(tmp_path: Path) -> None:
    """The first row keeps its id; a repeat (after stripping) is refused, naming where the id was first."""
    rows = [{**GOOD, "key": key} for key in ("k1", "k2", " k1", "k3", "k2")]
    message = "key: duplicate values in a column that must be unique, got {token!r} (first at {first})"
    expected = {2: message.format(token=" k1", first="{0}"), 4: message.format(token="k2", first="{1}")}

    _, errors = validate_records(rows, build_record_model(CONTRACT))
    assert {e.index: f"{e.field}: {e.problem}" for e in errors} == {
        i: m.format("records[0]", "records[1]") for i, m in expected.items()
    }
    frame = pd.DataFrame(rows, dtype="str")
    seen = SeenIds()  # one stream in chunks of two rows: repeats across chunks are found too
    rejects = pd.concat(
        check_rows(frame.iloc[i : i + 2], CONTRACT, first_number=2 + i, number_label="line", seen=seen).rejects
        for i in range(0, 5, 2)
    )
    assert dict(zip(rejects["line"] - 2, rejects["reason"], strict=True)) == {
        i: m.format("line 2", "line 3") for i, m in expected.items()
    }
    frame.assign(t="yes").to_csv(tmp_path / "ids.csv", index=False)
    with pytest.raises(ContractViolation) as err:
        check_table(read_raw(tmp_path / "ids.csv", fmt="csv"), CONTRACT, source="ids.csv", row_label="line")
    (problem,) = err.value.problems
    assert problem.rows == (4, 6)
    assert [f"key: {m}" for m in problem.messages] == [m.format("line 2", "line 3") for m in expected.values()]


def _fuzz_tokens(count: int, *, seed: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = "0123456789" * 3 + "+-.eE_ \tx,naifNAIF"
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8))) for _ in range(count)]


@pytest.mark.parametrize("padded", [False, True])
def test_numbers_vectorised_equal_the_scalar_rule_on_random_tokens(padded: bool) -> None:
    """Arrow's fast path (every token a clean number) and its slow path (mixed) against ``NumberRule.parse``."""
    rule = CONTRACT.grammar.features["n"]
    tokens = [t for t in _fuzz_tokens(4000, seed=7) if padded or (t.strip() and t == t.strip())]
    numbers = [t for t in tokens if rule.parse(t)[1] is None]
    for column in (tokens, numbers):  # the clean-only column takes the fast path
        verdict = check_numbers(pa.array(column, pa.string()), rule)
        refused = {i: f.check for f in verdict.failures for i in f.rows}
        for i, token in enumerate(column):
            value, check = rule.parse(token)
            assert refused.get(i) == check, (token, refused.get(i), check)
            if check is None:
                assert repr(float(verdict.values[i])) == repr(value), token
            elif check is NOT_A_NUMBER:
                assert math.isnan(verdict.values[i]), token


def test_the_fast_path_refuses_what_arrow_reads_but_the_grammar_does_not() -> None:
    rule = CONTRACT.grammar.features["n"]
    verdict = check_numbers(pa.array(["1", "inf", "-Infinity", "nan", "1e400", "2.5"]), rule)
    assert [(f.check, f.rows.tolist()) for f in verdict.failures] == [(NOT_A_NUMBER, [1, 2, 3, 4])]
    assert verdict.values[[0, 5]].tolist() == [1.0, 2.5]


def test_the_contract_compiles_its_grammar_once() -> None:
    contract: DataContract = load_contract(json.loads(CONTRACT.model_dump_json()))
    assert contract.grammar is contract.grammar
    assert build_record_model(contract).parse(GOOD)[1] == []
