"""Row-level validation of raw text against the data contract, vectorised column by column.

``prepare`` refuses a whole table that breaks its contract; batch scoring instead keeps the good rows and sets the
bad ones aside with a reason each. The rules are the ones ``validation.parse_table`` and the service's record
model apply: tokens are stripped, ``missing_values`` (or a null) mean missing, numbers parse as ``pd.to_numeric``
parses them ("nan" is not a number), then ``integer``/``min``/``max``, levels, boolean tokens and ``nullable``.

Every check runs over a whole column: Arrow compute or NumPy for numbers; categorical and boolean columns are
dictionary-encoded (the CSV reader can deliver them so) and only their few distinct values are looked at, then
mapped to every row with one NumPy take. Python runs once per rejected value, to write its reason.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tabrepro.contract.spec import DataContract, FeatureSpec
from tabrepro.errors import DataError

_SHOWN_CHARS = 40
_MISSING = "missing value in a column that may not be missing, got {value}"
_NOT_A_NUMBER = "expected a number, got {value}"
_MISSING_CODE, _UNKNOWN_CODE = -1, -2

# (rows failing, reason template with a {value} placeholder), for one column
Failures = list[tuple[np.ndarray, str]]
# a column's parsed values, its failures, and how to show its raw values at given rows
ColumnCheck = tuple[object, Failures, Callable[[np.ndarray], list[str]]]


@dataclass(frozen=True)
class CheckedRows:
    """One checked chunk. ``valid``: the id and the parsed features of the accepted rows, indexed by row number;
    numbers and booleans float64 (NaN when missing), categoricals a pandas Categorical over the contract's levels
    (NaN when missing). ``rejects``: row number, id and reason of every refused row."""

    valid: pd.DataFrame
    rejects: pd.DataFrame
    rejects_by_column: dict[str, int] = field(default_factory=dict)


def require_columns(columns: Iterable[str], contract: DataContract, *, source: str) -> None:
    """Raise ``DataError`` naming every id/feature column the contract needs and ``columns`` lacks."""
    present = set(columns)
    missing = [c for c in (contract.id_column, *contract.features) if c not in present]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {missing} required by data contract {contract.name!r} "
            f"(the target {contract.target.column!r} is optional; found {sorted(present)})"
        )


def check_rows(
    chunk: pa.Table | pd.DataFrame, contract: DataContract, *, first_number: int = 1, number_label: str = "row"
) -> CheckedRows:
    """Check a chunk of raw rows (text, or dictionary-encoded text); ``first_number`` numbers its first row."""
    table = chunk if isinstance(chunk, pa.Table) else pa.Table.from_pandas(chunk, preserve_index=False)
    require_columns(table.column_names, contract, source="chunk")
    numbers = np.arange(first_number, first_number + table.num_rows, dtype=np.int64)
    ids = _text(table[contract.id_column])
    parsed: dict[str, object] = {contract.id_column: ids.to_pandas()}
    failed: list[tuple[str, np.ndarray, list[str]]] = []
    for name, spec in contract.features.items():
        check = _check_numeric if spec.type == "numeric" else _check_coded
        parsed[name], failures, shown = check(table[name], spec, contract.missing_values)
        failed += [(name, rows, [template.format(value=v) for v in shown(rows)]) for rows, template in failures]
    valid = pd.DataFrame(parsed).set_axis(pd.Index(numbers, name=number_label))
    failed = [f for f in failed if f[1].size]
    if not failed:
        return CheckedRows(valid, _rejects_frame(failed, numbers, ids, number_label))
    bad = np.unique(np.concatenate([rows for _, rows, _ in failed]))
    by_column: dict[str, int] = {}
    for name, rows, _ in failed:
        by_column[name] = by_column.get(name, 0) + int(rows.size)
    keep = np.setdiff1d(np.arange(table.num_rows), bad, assume_unique=True)
    return CheckedRows(valid.iloc[keep], _rejects_frame(failed, numbers, ids, number_label), by_column)


def _check_numeric(column: pa.ChunkedArray, spec: FeatureSpec, missing_values: tuple[str, ...]) -> ColumnCheck:
    raw = _text(column)
    values, missing = _parse_numbers(raw, missing_values)
    failures: Failures = [] if spec.nullable else [(np.flatnonzero(missing), _MISSING)]
    failures.append((np.flatnonzero(~missing & np.isnan(values)), _NOT_A_NUMBER))
    failures.append((np.flatnonzero(_out_of_rule(values, spec)), f"expected {_numeric_rule(spec)}, got {{value}}"))
    return values, failures, lambda rows: [_show(v) for v in raw.take(pa.array(rows)).to_pylist()]


def _parse_numbers(raw: pa.Array, missing_values: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """float64 values (NaN when missing or not a number) and the missing mask.

    Fast path: Arrow's strict cast of the raw text; it refuses blanks and padding, so success means no value
    needed stripping and none was a missing token (unless a missing token is itself a number). Otherwise strip,
    mask the missing tokens and cast; on a bad token, ``pd.to_numeric(errors="coerce")`` (the parser ``prepare``
    uses; Arrow accepts the same tokens and rounds correctly) turns the column into NaN where it fails.
    """
    if not _any_number(missing_values):
        try:
            values = pc.cast(raw, pa.float64()).to_numpy(zero_copy_only=False)
            return values, _mask(pc.is_null(raw))
        except pa.ArrowInvalid:
            pass
    stripped = pc.utf8_trim_whitespace(raw)
    missing = pc.or_kleene(pc.is_null(raw), pc.is_in(stripped, value_set=pa.array(missing_values, pa.string())))
    present = pc.if_else(missing, pa.scalar(None, pa.string()), stripped)
    try:
        values = pc.cast(present, pa.float64()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:
        text = pd.Series(present.to_numpy(zero_copy_only=False), dtype=object)
        values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return values, _mask(missing)


@functools.cache
def _any_number(tokens: tuple[str, ...]) -> bool:
    for token in tokens:
        try:
            pc.cast(pa.array([token], pa.string()), pa.float64())
        except pa.ArrowInvalid:
            continue
        return True
    return False


def _check_coded(column: pa.ChunkedArray, spec: FeatureSpec, missing_values: tuple[str, ...]) -> ColumnCheck:
    """Categorical and boolean columns: classify each distinct raw value once, then map codes to the rows."""
    tokens = list(spec.values or ()) if spec.type == "categorical" else [*spec.true_values, *spec.false_values]
    distinct, indices = _dictionary(column)
    codes_of = {t: i for i, t in enumerate(tokens)}
    lookup = [
        _MISSING_CODE if v.strip() in missing_values else codes_of.get(v.strip(), _UNKNOWN_CODE) for v in distinct
    ]
    codes = np.asarray([*lookup, _MISSING_CODE], dtype=np.int64)[indices]  # the extra slot is a null
    failures: Failures = [] if spec.nullable else [(np.flatnonzero(codes == _MISSING_CODE), _MISSING)]
    if spec.type == "categorical":
        failures.append((np.flatnonzero(codes == _UNKNOWN_CODE), f"{{value}} is not one of {tokens}"))
        parsed: object = pd.Categorical.from_codes(np.maximum(codes, -1), dtype=pd.CategoricalDtype(tokens))
    else:
        failures.append((np.flatnonzero(codes == _UNKNOWN_CODE), f"expected one of {tokens}, got {{value}}"))
        parsed = np.where(codes < 0, np.nan, (codes < len(spec.true_values)).astype(np.float64))
    shown = [*(_show(v) for v in distinct), _show(None)]
    return parsed, failures, lambda rows: [shown[i] for i in indices[rows]]


def _dictionary(column: pa.ChunkedArray) -> tuple[list[str], np.ndarray]:
    """The distinct raw values and, per row, the index of its value (``len(distinct)`` for a null)."""
    if not pa.types.is_dictionary(column.type) or column.type.value_type != pa.string():
        column = pa.chunked_array([pc.dictionary_encode(_text(column))])
    column = column.unify_dictionaries()
    if column.num_chunks == 0:
        return [], np.empty(0, dtype=np.int64)
    distinct = column.chunk(0).dictionary.to_pylist()
    indices = [pc.fill_null(c.indices, len(distinct)).to_numpy(zero_copy_only=False) for c in column.chunks]
    return distinct, np.concatenate(indices).astype(np.intp, copy=False)


def _text(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    return column if column.type == pa.string() else column.cast(pa.string())


def _out_of_rule(values: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        bad = np.zeros(values.shape, dtype=bool)
        if spec.integer:
            bad |= ~np.isnan(values) & (values % 1 != 0)  # inf % 1 is NaN: not an integer either
        if spec.min is not None:
            bad |= values < spec.min
        if spec.max is not None:
            bad |= values > spec.max
    return bad


def _numeric_rule(spec: FeatureSpec) -> str:
    kind = "an integer" if spec.integer else "a number"
    if spec.min is not None and spec.max is not None:
        return f"{kind} between {spec.min:g} and {spec.max:g}"
    if spec.min is not None:
        return f"{kind} >= {spec.min:g}"
    return f"{kind} <= {spec.max:g}" if spec.max is not None else kind


def _mask(values: pa.Array) -> np.ndarray:
    return values.to_numpy(zero_copy_only=False).astype(bool, copy=False)


def _show(value: str | None) -> str:
    if value is None:
        return "null"
    return repr(value if len(value) <= _SHOWN_CHARS else value[:_SHOWN_CHARS] + "...")


def _rejects_frame(
    failed: list[tuple[str, np.ndarray, list[str]]], numbers: np.ndarray, ids: pa.Array, number_label: str
) -> pd.DataFrame:
    """One row per refused row, its reasons joined with "; " in contract column order."""
    if not failed:
        return pd.DataFrame({number_label: np.empty(0, np.int64), "id": pd.Series([], dtype="str"), "reason": []})
    rows = np.concatenate([r for _, r, _ in failed])
    reasons = np.asarray([f"{name}: {text}" for name, _, texts in failed for text in texts], dtype=object)
    order = np.argsort(rows, kind="stable")  # columns were visited in contract order: keep it within a row
    joined = pd.Series(reasons[order]).groupby(rows[order], sort=True).agg("; ".join)
    positions = joined.index.to_numpy()
    return pd.DataFrame(
        {
            number_label: numbers[positions],
            "id": ids.take(pa.array(positions)).to_pandas(),
            "reason": joined.to_numpy(dtype=object),
        }
    )
