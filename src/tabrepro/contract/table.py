"""The table adapter: a whole raw table checked by the contract's grammar, every problem in one report.

Raw tables are read as text (``tabrepro.io.raw``) so that parsing is done here, by the grammar, and not by a
reader's guesses. ``check_table`` (``prepare``) raises one ``ContractViolation`` that lists every failing column
and check, with example values and their line (CSV) or row (Parquet) numbers; ``parse_table`` (drift) parses
without judging and returns only the tokens that are no value at all. The verdicts and their messages are the
grammar's (the same as the rows and record adapters give); pandera describes the parsed frame that ``featurize``
reads, and checks it as a postcondition.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pandera
import pyarrow as pa

from tabrepro.contract.columns import Failure, check_numbers, check_tokens
from tabrepro.contract.grammar import COLUMN_MISSING, NO_ROWS, NOT_A_NUMBER, NumberRule, TokenRule, show
from tabrepro.contract.ids import SeenIds, check_ids
from tabrepro.contract.spec import DataContract
from tabrepro.errors import DataError

_MAX_EXAMPLES = 5


@dataclass(frozen=True)
class Problem:
    """One failing column and check: where it fails, the raw tokens there and the grammar's message for each."""

    column: str
    check: str
    rows: tuple[object, ...] = ()
    values: tuple[object, ...] = ()
    messages: tuple[str, ...] = ()
    firsts: tuple[object, ...] = ()  # a repeated id: the row that had it first, for each of ``rows``

    def describe(self, row_label: str) -> str:
        head = f"column {self.column!r}: {self.check}"
        if not self.rows:
            return head
        firsts = self.firsts or (None,) * len(self.rows)
        examples = ", ".join(
            f"{row_label} {r}: {show(v) if isinstance(v, str | None) else repr(v)}"
            + (f" (first at {row_label} {f})" if f is not None else "")
            for r, v, f in zip(self.rows[:_MAX_EXAMPLES], self.values[:_MAX_EXAMPLES], firsts, strict=False)
        )
        more = "" if len(self.rows) <= _MAX_EXAMPLES else ", ..."
        return f"{head} ({len(self.rows)} rows; {examples}{more})"


class ContractViolation(DataError):
    """The data broke its contract. ``problems`` holds every failure; ``str()`` is the full report."""

    def __init__(self, contract: str, source: str, problems: list[Problem], row_label: str = "row"):
        self.contract, self.source, self.problems = contract, source, problems
        lines = [p.describe(row_label) for p in problems]
        super().__init__(
            f"{source} breaks data contract {contract!r}: {len(problems)} problem(s)\n  - " + "\n  - ".join(lines)
        )


def check_table(raw: pd.DataFrame, contract: DataContract, *, source: str, row_label: str = "row") -> pd.DataFrame:
    """Parse ``raw`` (text columns; its index numbers the rows) and judge every token, id and column; return the
    parsed frame (see ``parse_table``) or raise ``ContractViolation`` listing every problem."""
    problems = [Problem(c, COLUMN_MISSING) for c in contract.columns if c not in raw.columns]
    if raw.empty:
        problems.append(Problem("*", NO_ROWS))
        raise ContractViolation(contract.name, source, problems, row_label)
    parsed, failures = _evaluate(raw, contract)
    problems += [_problem(name, failure, raw.index, row_label) for name, failure in failures]
    if problems:
        raise ContractViolation(contract.name, source, problems, row_label)
    build_schema(contract).validate(parsed)  # the grammar's output has the shape featurize reads: a bug if not
    return parsed


def parse_table(raw: pd.DataFrame, contract: DataContract) -> tuple[pd.DataFrame, list[Problem]]:
    """Text columns -> typed columns per the contract, judging nothing but whether a token is a value at all.

    Columns the contract does not declare are dropped, missing ones skipped. Numeric and boolean features become
    float64 (booleans 1/0; NaN when missing or no value), categoricals, the id and the target stripped text (NaN
    when missing; levels the contract does not know kept). A number outside the contract's range is kept.
    The problems (at most one per column) are the tokens that are no value: not a number, not a boolean token.
    """
    parsed, failures = _evaluate(raw, contract)
    unparsed = [(n, f) for n, f in failures if f.check is NOT_A_NUMBER or _is_boolean_token(contract, n, f)]
    return parsed, [_problem(name, failure, raw.index, "row") for name, failure in unparsed]


def _is_boolean_token(contract: DataContract, name: str, failure: Failure) -> bool:
    rule = contract.grammar.features.get(name)
    return isinstance(rule, TokenRule) and rule.kind == "boolean" and failure.check is rule.unknown


def _evaluate(raw: pd.DataFrame, contract: DataContract) -> tuple[pd.DataFrame, list[tuple[str, Failure]]]:
    """Every present contract column parsed by its rule, and every failure (rows as positions). Without an id
    column, the key column holds each row's number (``raw``'s index: its line or row in the source)."""
    grammar, out, failures = contract.grammar, {}, []
    if grammar.id is None:
        out[contract.key_column] = raw.index.to_numpy(dtype=np.int64)
    for name in (c for c in contract.columns if c in raw.columns):
        column = _arrow(raw[name])
        if grammar.id is not None and name == grammar.id.name:
            verdict = check_ids(column, grammar.id, SeenIds(), np.arange(len(raw), dtype=np.int64))
            out[name], found = verdict.ids.to_numpy(zero_copy_only=False), verdict.failures
        elif isinstance(rule := grammar.features.get(name, grammar.target), NumberRule):
            numbers = check_numbers(column, rule)
            out[name], found = numbers.values, numbers.failures
        else:
            tokens = check_tokens(column, rule)
            out[name], found = _parsed_tokens(tokens.codes, tokens.texts(rule), rule), tokens.failures
        failures += [(name, f) for f in found]
    text = [n for n in out if n in (*contract.id_columns, contract.target.column, *contract.categorical_features)]
    return pd.DataFrame(out, index=raw.index).astype(dict.fromkeys(text, "str")), failures


def _parsed_tokens(codes: np.ndarray, texts: np.ndarray, rule: TokenRule) -> np.ndarray:
    """Booleans as float64 1/0 (NaN when missing or refused); other token columns their stripped text."""
    if rule.kind == "boolean":
        flags: np.ndarray = np.asarray([*rule.values, np.nan], dtype=np.float64)[codes]
        return flags
    return texts


def _arrow(column: pd.Series) -> pa.Array:
    """A column as Arrow (text, or whatever type it holds: the adapter casts it to text)."""
    try:
        return pa.array(column, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed Python objects: each as its text
        return pa.array([None if pd.isna(v) else str(v) for v in column], pa.string())


def _problem(name: str, failure: Failure, index: pd.Index, row_label: str) -> Problem:
    rows, firsts = index[failure.rows], ()
    if failure.firsts is not None:  # positions of the first rows: named by their labels
        labels = index[failure.firsts].to_numpy()
        failure = Failure(failure.check, failure.rows, failure.tokens, labels)
        firsts = tuple(labels.tolist())
    messages = tuple(failure.messages(row_label))
    return Problem(name, failure.check.summary, tuple(rows), tuple(failure.tokens), messages, firsts)


def build_schema(contract: DataContract) -> pandera.DataFrameSchema:
    """The pandera schema of a parsed table: dtypes, which columns may be missing, the key (the id as text, or
    the row number). The rules on values (ranges, levels, tokens) are the grammar's; this only describes what
    ``check_table`` hands on."""
    key_type = "int64" if contract.id_column is None else "str"
    columns: dict[str, pandera.Column] = {
        contract.key_column: pandera.Column(key_type, nullable=False, unique=True),
        contract.target.column: pandera.Column("str", nullable=True),
    }
    for name, spec in contract.features.items():
        dtype = "str" if spec.type == "categorical" else "float64"
        columns[name] = pandera.Column(dtype, nullable=spec.nullable)
    return pandera.DataFrameSchema(columns, name=contract.name, strict=False)
