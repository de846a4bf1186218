"""The grammar applied to whole Arrow columns: the vectorised half shared by the table and the rows adapters.

Numbers: Arrow's strict cast of the raw text is the fast path (it reads exactly ``NUMBER_SYNTAX`` plus the
non-finite spellings "inf"/"nan", which are refused afterwards); a column with padding, missing tokens or bad
tokens takes the slow path: strip, mask the missing tokens, match ``NUMBER_SYNTAX`` (RE2), cast. Boolean and
categorical columns are dictionary-encoded and each distinct raw value is classified once by the grammar's own
``TokenRule.code``. (Ids: ``tabrepro.contract.ids``.) ``tests/unit/test_grammar_differential.py`` holds these to
the scalar rules the service applies.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tabrepro.contract.grammar import (
    MISSING,
    NOT_A_NUMBER,
    NUMBER_SYNTAX,
    WHITESPACE,
    Check,
    NumberRule,
    TokenRule,
    clean_token,
)

_NUMBER_RE2 = f"^(?:{NUMBER_SYNTAX})$"


@dataclass(frozen=True)
class Failure:
    """The rows (positions in the column) that break one check, their raw tokens and, for a repeated id, the
    number of the row that had it first."""

    check: Check
    rows: np.ndarray
    tokens: list[str | None]
    firsts: np.ndarray | None = None

    def messages(self, number_label: str) -> list[str]:
        if self.firsts is None:
            return [self.check.message(t) for t in self.tokens]
        pairs = zip(self.tokens, self.firsts, strict=True)
        return [self.check.message(t, first=f"{number_label} {n}") for t, n in pairs]


@dataclass(frozen=True)
class NumberVerdict:
    """float64 values (NaN when missing or not a number; a number breaking integer/min/max is kept)."""

    values: np.ndarray
    failures: list[Failure]


@dataclass(frozen=True)
class TokenVerdict:
    """Per row the index of its token in ``rule.tokens`` (-1: missing or refused); ``texts`` the stripped tokens."""

    codes: np.ndarray
    failures: list[Failure]
    distinct: list[str | None]
    indices: np.ndarray

    def texts(self, rule: TokenRule) -> np.ndarray:
        """Per row the stripped token (unknown ones too), None when missing: object array."""
        cleaned = np.asarray([*(clean_token(t, rule.missing) for t in self.distinct), None], dtype=object)
        per_row: np.ndarray = cleaned[self.indices]
        return per_row


def text(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """One string array: chunks combined, dictionaries decoded, other types cast (a Parquet 1.0 reads "1")."""
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    return column if column.type == pa.string() else column.cast(pa.string())


def check_numbers(column: pa.ChunkedArray | pa.Array, rule: NumberRule) -> NumberVerdict:
    """``NumberRule.parse`` over a whole column: the same checks in the same order, the same values."""
    raw = text(column)
    values, missing, unparsed = _parse_numbers(raw, rule.missing)
    with np.errstate(invalid="ignore"):
        breaks = np.zeros(values.shape, dtype=bool)
        if rule.integer:
            breaks |= ~np.isnan(values) & (values % 1 != 0)
        if rule.min is not None:
            breaks |= values < rule.min
        if rule.max is not None:
            breaks |= values > rule.max
    masks = [(NOT_A_NUMBER, unparsed), (rule.out_of_rule, breaks)]
    if not rule.nullable:
        masks.insert(0, (MISSING, missing))
    return NumberVerdict(values, [failure_at(check, mask, raw) for check, mask in masks if mask.any()])


def _parse_numbers(raw: pa.Array, missing_tokens: frozenset[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float64 values (NaN when missing or not a number), the missing mask and the not-a-number mask."""
    if not _any_number(missing_tokens):
        try:
            values = pc.cast(raw, pa.float64()).to_numpy(zero_copy_only=False)
        except pa.ArrowInvalid:
            pass
        else:
            missing = as_mask(pc.is_null(raw))
            unparsed = ~missing & ~np.isfinite(values)
            return (np.where(unparsed, np.nan, values) if unparsed.any() else values), missing, unparsed
    stripped = pc.utf8_trim(raw, characters=WHITESPACE)
    missing = pc.or_kleene(pc.is_null(raw), pc.is_in(stripped, value_set=token_set(missing_tokens)))
    present = pc.if_else(missing, pa.scalar(None, pa.string()), stripped)
    try:  # Arrow reads exactly NUMBER_SYNTAX and the non-finite spellings, refused below
        values = pc.cast(present, pa.float64()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:  # some token is no number: find them by the syntax itself
        syntax = pc.fill_null(pc.match_substring_regex(present, _NUMBER_RE2), False)
        values = pc.cast(pc.if_else(syntax, present, pa.scalar(None, pa.string())), pa.float64()).to_numpy(
            zero_copy_only=False
        )
    missing_mask = as_mask(missing)
    unparsed = ~missing_mask & ~np.isfinite(values)
    return np.where(unparsed, np.nan, values), missing_mask, unparsed


@functools.cache
def _any_number(tokens: frozenset[str]) -> bool:
    """Whether Arrow's cast reads a missing token as a number (then the fast path would take it for one)."""
    for token in tokens:
        try:
            pc.cast(pa.array([token], pa.string()), pa.float64())
        except pa.ArrowInvalid:
            continue
        return True
    return False


def check_tokens(column: pa.ChunkedArray | pa.Array, rule: TokenRule) -> TokenVerdict:
    """Booleans, categoricals, the target: each distinct raw value is classified once, then mapped to the rows."""
    distinct, indices = _dictionary(column)
    tokens = [*distinct, None]  # the last slot stands for a null
    verdicts = [rule.code(token) for token in tokens]
    codes = np.asarray([code for code, _ in verdicts], dtype=np.int64)[indices]
    kinds = (MISSING, rule.unknown)
    broken = np.asarray([next((k for k, c in enumerate(kinds) if c is check), -1) for _, check in verdicts])
    broken = broken[indices]
    failures = []
    for kind, check in enumerate(kinds):
        rows = np.flatnonzero(broken == kind)
        if rows.size:
            failures.append(Failure(check, rows, [tokens[i] for i in indices[rows]]))
    return TokenVerdict(codes, failures, distinct, indices)


def _dictionary(column: pa.ChunkedArray | pa.Array) -> tuple[list[str | None], np.ndarray]:
    """The distinct raw values and, per row, the index of its value (``len(distinct)`` for a null)."""
    if isinstance(column, pa.Array):
        column = pa.chunked_array([column])
    if not pa.types.is_dictionary(column.type) or column.type.value_type != pa.string():
        column = pa.chunked_array([pc.dictionary_encode(text(column))])
    column = column.unify_dictionaries()
    if column.num_chunks == 0:
        return [], np.empty(0, dtype=np.intp)
    distinct = column.chunk(0).dictionary.to_pylist()
    indices = [pc.fill_null(c.indices.cast(pa.int64()), len(distinct)).to_numpy() for c in column.chunks]
    return distinct, np.concatenate(indices).astype(np.intp, copy=False)


def failure_at(check: Check, mask: np.ndarray, raw: pa.Array) -> Failure:
    """The rows where ``mask`` is set breaking ``check``, with their raw tokens."""
    rows = np.flatnonzero(mask)
    return Failure(check, rows, raw.take(pa.array(rows)).to_pylist() if rows.size else [])


def token_set(tokens: frozenset[str]) -> pa.Array:
    """Tokens as an Arrow value set (sorted: the same array for the same set)."""
    return pa.array(sorted(tokens), pa.string())


def as_mask(values: pa.Array) -> np.ndarray:
    """A boolean Arrow array (no nulls) as a NumPy mask."""
    mask: np.ndarray = values.to_numpy(zero_copy_only=False).astype(bool, copy=False)
    return mask
