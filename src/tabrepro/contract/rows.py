"""The rows adapter: a chunk of raw rows (Arrow text) checked by the contract's grammar, row by row.

``prepare`` refuses a whole table that breaks its contract; batch scoring instead keeps the good rows and sets the
bad ones aside, each with every failing column and the grammar's message (``tenure: expected a number, got
'five'``). Every check runs over a whole column (``tabrepro.contract.columns``); Python runs once per distinct
categorical value and once per refused value, to write its reason. Ids are checked too: a missing id, or one
that an earlier row of the same stream had (``SeenIds``), is refused as ``prepare`` would refuse it. A contract
without an id keys each row by its number (``contract.key_column``), as ``prepare`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from tabrepro.contract.columns import Failure, check_numbers, check_tokens
from tabrepro.contract.grammar import NumberRule, require_columns
from tabrepro.contract.ids import SeenIds, check_ids
from tabrepro.contract.spec import DataContract

__all__ = ["CheckedRows", "SeenIds", "check_rows", "require_columns"]


@dataclass(frozen=True)
class CheckedRows:
    """One checked chunk. ``valid``: the key (the id, or the row's number when the contract has no id; column
    ``contract.key_column``) and the parsed features of the accepted rows, indexed by row number; numbers and
    booleans float64 (NaN when missing), categoricals a pandas Categorical over the contract's levels
    (NaN when missing). ``rejects``: row number, id (null without one) and reason of every refused row."""

    valid: pd.DataFrame
    rejects: pd.DataFrame
    rejects_by_column: dict[str, int] = field(default_factory=dict)


def check_rows(
    chunk: pa.Table | pd.DataFrame,
    contract: DataContract,
    *,
    first_number: int = 1,
    number_label: str = "row",
    seen: SeenIds | None = None,
) -> CheckedRows:
    """Check a chunk of raw rows (text, or dictionary-encoded text); ``first_number`` numbers its first row.
    ``seen`` carries the ids of earlier chunks of the same input (a repeat of one is refused)."""
    table = chunk if isinstance(chunk, pa.Table) else pa.Table.from_pandas(chunk, preserve_index=False)
    require_columns(table.column_names, contract, source="chunk")
    grammar = contract.grammar
    numbers = np.arange(first_number, first_number + table.num_rows, dtype=np.int64)
    ids, failed = _check_key(table, contract, SeenIds() if seen is None else seen, numbers)
    parsed: dict[str, object] = {contract.key_column: numbers if ids is None else ids.to_pandas()}
    for name, rule in grammar.features.items():
        if isinstance(rule, NumberRule):
            checked = check_numbers(table[name], rule)
            parsed[name], failures = checked.values, checked.failures
        else:
            coded = check_tokens(table[name], rule)
            parsed[name], failures = _parsed_tokens(coded.codes, rule.values, rule.kind), coded.failures
        failed += [(name, f) for f in failures]
    valid = pd.DataFrame(parsed).set_axis(pd.Index(numbers, name=number_label))
    rejects = _rejects_frame(failed, numbers, ids, number_label)
    if not failed:
        return CheckedRows(valid, rejects)
    by_column: dict[str, int] = {}
    for name, failure in failed:
        by_column[name] = by_column.get(name, 0) + int(failure.rows.size)
    bad = np.unique(np.concatenate([f.rows for _, f in failed]))
    keep = np.setdiff1d(np.arange(table.num_rows), bad, assume_unique=True)
    return CheckedRows(valid.iloc[keep], rejects, by_column)


def _check_key(
    table: pa.Table, contract: DataContract, seen: SeenIds, numbers: np.ndarray
) -> tuple[pa.Array | None, list[tuple[str, Failure]]]:
    """The stripped ids and their failures; no ids (None) when the contract declares no id column."""
    rule = contract.grammar.id
    if rule is None:
        return None, []
    verdict = check_ids(table[rule.name], rule, seen, numbers)
    return verdict.ids, [(rule.name, f) for f in verdict.failures]


def _parsed_tokens(codes: np.ndarray, values: tuple[float | str, ...], kind: str) -> object:
    """Categoricals as a pandas Categorical over the levels (cheap ONNX feeds); booleans as float64 1/0."""
    if kind == "boolean":
        return np.asarray([*values, np.nan], dtype=np.float64)[codes]  # code -1 picks the NaN
    return pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(list(values)))


def _rejects_frame(
    failed: list[tuple[str, Failure]], numbers: np.ndarray, ids: pa.Array | None, number_label: str
) -> pd.DataFrame:
    """One row per refused row, its reasons joined with "; " in contract column order."""
    if not failed:
        return pd.DataFrame({number_label: np.empty(0, np.int64), "id": pd.Series([], dtype="str"), "reason": []})
    rows = np.concatenate([f.rows for _, f in failed])
    reasons = [f"{name}: {text}" for name, f in failed for text in f.messages(number_label)]
    order = np.argsort(rows, kind="stable")  # columns were visited in contract order: keep it within a row
    joined = pd.Series(np.asarray(reasons, dtype=object)[order]).groupby(rows[order], sort=True).agg("; ".join)
    positions = joined.index.to_numpy()
    refused_ids = pa.nulls(positions.size) if ids is None else ids.take(pa.array(positions))
    return pd.DataFrame(
        {
            number_label: numbers[positions],
            "id": refused_ids.to_pandas(),
            "reason": joined.to_numpy(dtype=object),
        }
    )
