"""Drafting a data contract from a raw table: the start of ``conf/contracts/<name>.yaml``, for a human to review.

``draft_contract`` infers, from the text columns the raw reader gives (``tabrepro.io.raw``), what a contract
declares: each column's type (numeric, boolean, categorical), its levels, its observed range rounded outward,
whether it is integer, its boolean tokens (case as in the data), the missing-value tokens it holds and whether it
is nullable; the id candidates (unique and non-empty in every row, not free text); and the columns it would not
declare, with why (constant, always missing, free or near-unique text). It never guesses silently: a column the data
cannot settle (an integer with few distinct values: a count or a code of categories? a 0/1 column: a flag or a
count? a few tokens that are not numbers in a numeric column) is drafted one way with a ``DECIDE:`` comment saying
what to decide. The target's task is given or proposed (``contract.draft_target``: regression, binary or multiclass,
with a ``DECIDE:`` line when unsure). ``contract.draft_yaml.render_draft`` writes it out. Tokens are judged as the
grammar judges them: stripped of ``WHITESPACE``, case-exact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from tabrepro.contract.draft_target import as_numbers as _as_numbers
from tabrepro.contract.draft_target import draft_target
from tabrepro.contract.draft_target import outward as _outward
from tabrepro.contract.draft_target import show_number as _number
from tabrepro.contract.grammar import WHITESPACE, show
from tabrepro.errors import ConfigError, DataError

# tokens that commonly mean "missing" in exported tables; "" is always one (the contract's default)
MISSING_TOKENS = ("", "NA", "N/A", "n/a", "NaN", "nan", "NULL", "null", "None", "?")
BOOLEAN_PAIRS = (("yes", "no"), ("y", "n"), ("true", "false"), ("t", "f"), ("1", "0"))
FEW_CODES = 50  # an integer column with at most this many distinct values may be a code of categories
MANY_LEVELS = 30  # a categorical with more levels than this is flagged
NEAR_UNIQUE = 0.9  # text with at least this share of distinct values among its rows is no feature
_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class ColumnDraft:
    """One declared column: the ``FeatureSpec`` fields to write (in order), a trailing remark, what to decide."""

    name: str
    spec: dict[str, Any]
    remark: str = ""
    decide: tuple[str, ...] = ()


@dataclass(frozen=True)
class Draft:
    """A drafted contract; ``ignored`` maps each column it does not declare to why."""

    name: str
    source: str
    fmt: str
    rows: int
    target: dict[str, Any]  # the TargetSpec fields: column, task (unless binary) and its labels or range
    target_remark: str
    missing_values: dict[str, list[str]]  # token -> the columns it was found in
    features: list[ColumnDraft]
    id_candidates: list[str] = field(default_factory=list)
    ignored: dict[str, str] = field(default_factory=dict)
    target_decide: tuple[str, ...] = ()  # what to decide about the target's task, labels or unit


def default_name(path: str) -> str:
    """A contract name from a file name: its stem, characters a name may not hold replaced by "_"."""
    stem = path.replace("\\", "/").rsplit("/", 1)[-1].split(".", 1)[0]
    return _NAME.sub("_", stem).strip("_") or "data"


def check_name(name: str) -> str:
    """``name`` if a contract may be called so (it names ``conf/contracts/<name>.yaml``); a ``ConfigError`` if not."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ConfigError(f"--name {name!r}: a contract name holds only letters, digits, '_', '.' and '-'")
    return name


def draft_contract(
    raw: pd.DataFrame,
    *,
    target: str,
    name: str,
    source: str,
    fmt: str,
    positive: str | None = None,
    task: str | None = None,
) -> Draft:
    """Infer a contract from ``raw`` (every column text, as ``read_raw`` gives it) for ``target``: its task as
    given (``positive`` implies binary) or proposed (``contract.draft_target``). A ``DataError`` names a target
    column that is not in ``raw`` or does not fit the task (a binary one without exactly two labels), or a table
    with no column that can be a feature (only the target, or ids and constants besides it)."""
    check_name(name)
    if raw.empty:
        raise DataError(f"{source}: the table has no data rows; a contract is drafted from data")
    tokens = {c: raw[c].astype("string").str.strip(WHITESPACE) for c in raw.columns}
    found = _missing_tokens(tokens)
    missing = frozenset(found) | {""}
    if target not in tokens:
        raise DataError(f"{source}: --target {target!r} is not a column; columns: {', '.join(tokens)}")
    fields, remark, decide = draft_target(
        tokens[target], target=target, positive=positive, task=task, missing=missing, source=source
    )
    draft = Draft(name, source, fmt, len(raw), fields, remark, found, [], target_decide=decide)
    for column, values in tokens.items():
        if column != target:
            _add_column(draft, column, values[~values.isin(missing)].value_counts(sort=False), len(raw))
    if not draft.features:
        why = "; ".join(f"{c!r}: {reason}" for c, reason in draft.ignored.items()) or "it has no other column"
        raise DataError(f"{source}: no feature to draft besides the target {target!r} ({why}); a contract needs one")
    return draft


def _missing_tokens(tokens: dict[str, pd.Series]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {"": []}
    for column, values in tokens.items():
        for token in sorted(set(values.unique()) & set(MISSING_TOKENS)):
            found.setdefault(token, []).append(column)
    return found


def _add_column(draft: Draft, name: str, counts: pd.Series, rows: int) -> None:
    """Declare ``name`` (its present tokens' ``counts``) as a feature or id candidate, or say why it is ignored."""
    present = int(counts.sum())
    if present == 0:
        draft.ignored[name] = "always missing"
    elif len(counts) == 1:
        draft.ignored[name] = f"constant: every present value is {show(str(counts.index[0]))}"
    elif _is_id(counts, rows):
        draft.id_candidates.append(name)
    elif (pair := _boolean_pair(counts)) is not None:
        draft.features.append(_boolean(name, counts, pair, rows - present))
    elif (numeric := _numeric(name, counts, rows - present)) is not None:
        draft.features.append(numeric)
    elif len(counts) >= NEAR_UNIQUE * present:
        spaced = any(any(ch in WHITESPACE for ch in str(t)) for t in counts.index)
        kind = "free text" if spaced else "near-unique text"
        draft.ignored[name] = f"{kind}: {len(counts)} distinct values in {present} rows, no use as a feature"
    else:
        draft.features.append(_categorical(name, counts, rows - present))


def _is_id(counts: pd.Series, rows: int) -> bool:
    """Unique and non-empty in every row, and a key rather than free text or a measurement: no whitespace inside,
    and whole numbers if numbers."""
    if int(counts.sum()) != rows or len(counts) != rows or rows < 2:
        return False
    texts = [str(t) for t in counts.index]
    if any(any(ch in WHITESPACE for ch in t) for t in texts):
        return False
    numbers = _as_numbers(texts)
    return numbers is None or all(v % 1 == 0 for v in numbers)


def _boolean_pair(counts: pd.Series) -> tuple[str, str] | None:
    lowered = {str(t).lower() for t in counts.index}
    return next((pair for pair in BOOLEAN_PAIRS if lowered == set(pair)), None)


def _boolean(name: str, counts: pd.Series, pair: tuple[str, str], absent: int) -> ColumnDraft:
    texts = sorted(str(t) for t in counts.index)
    spec: dict[str, Any] = {
        "type": "boolean",
        "true_values": [t for t in texts if t.lower() == pair[0]],
        "false_values": [t for t in texts if t.lower() == pair[1]],
    }
    decide: tuple[str, ...] = ()
    if pair == ("1", "0"):
        decide = ('only "0" and "1" occur: a flag (boolean, as drafted) or a count that may exceed 1 '
                  "(then type: numeric, integer: true, min: 0)?",)  # fmt: skip
    return ColumnDraft(name, _nullable(spec, absent), _missing_remark(absent), decide)


def _numeric(name: str, counts: pd.Series, absent: int) -> ColumnDraft | None:
    """A numeric draft when the tokens are numbers (but for a few distinct others, in at most 5 % of rows)."""
    texts = [str(t) for t in counts.index]
    is_number = [_as_numbers([t]) is not None for t in texts]
    others = [t for t, ok in zip(texts, is_number, strict=True) if not ok]
    if len(others) == len(texts) or len(others) > 3 or counts[others].sum() > 0.05 * counts.sum():
        return None
    values = _as_numbers([t for t, ok in zip(texts, is_number, strict=True) if ok]) or []
    integer = all(v % 1 == 0 for v in values)
    lo, hi = min(values), max(values)
    spec: dict[str, Any] = {"type": "numeric", **({"integer": True} if integer else {})}
    spec["min"], spec["max"] = _outward(lo, hi, integer=integer)
    decide = []
    if others:
        shown = ", ".join(f"{show(t)} ({counts[t]} rows)" for t in others)
        decide.append(f"not numbers: {shown}: add them to missing_values if they mean missing, or make it categorical")
    if integer and (distinct := len(set(values))) <= FEW_CODES:
        decide.append(
            f"integer with {distinct} distinct values ({_number(lo)} .. {_number(hi)}): a count or ordered scale "
            "(numeric, as drafted) or codes of categories (then type: categorical, values: [the codes])?"
        )
    remark = f"observed {_number(lo)} .. {_number(hi)}" if (spec["min"], spec["max"]) != (lo, hi) else ""
    remark = "; ".join(r for r in (remark, _missing_remark(absent)) if r)
    return ColumnDraft(name, _nullable(spec, absent), remark, tuple(decide))


def _categorical(name: str, counts: pd.Series, absent: int) -> ColumnDraft:
    levels = sorted(str(t) for t in counts.index)
    decide = []
    if len(levels) > MANY_LEVELS:
        decide.append(f"{len(levels)} levels: group the rare ones upstream, or leave the column out")
    folded: dict[str, list[str]] = {}
    for level in levels:
        folded.setdefault(level.lower(), []).append(level)
    clashes = [variants for variants in folded.values() if len(variants) > 1]
    if clashes:
        decide.append(f"levels that differ only in case {clashes}: tokens are case-exact; one level or several?")
    spec = _nullable({"type": "categorical", "values": levels}, absent)
    return ColumnDraft(name, spec, _missing_remark(absent), tuple(decide))


def _nullable(spec: dict[str, Any], absent: int) -> dict[str, Any]:
    return {**spec, "nullable": True} if absent else spec


def _missing_remark(absent: int) -> str:
    return f"missing in {absent} row(s)" if absent else ""
