"""How a Parquet file's native columns become the text tokens every adapter reads.

A string column is read as it is. A native boolean column of a boolean feature becomes the contract's first true
and false tokens (``True`` -> ``"Yes"`` for ``true_values: ["Yes"]``, ``"1"`` for ``["1"]``): lossless, since the
contract reads that token as the same boolean. Any other type is cast to text as Arrow writes it, which is what a
CSV export holds: an integer ``30`` reads ``"30"``, a float ``2.0`` reads ``"2"`` and ``1.5`` ``"1.5"`` (so a float
column of a numeric feature is read, an integer feature included when its values are whole), a timestamp its ISO
text; a boolean outside a boolean feature reads ``"true"`` / ``"false"`` and is judged by the contract like any text.
A null stays missing.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from tabrepro.contract.spec import DataContract
from tabrepro.errors import DataError

CODED = pa.dictionary(pa.int32(), pa.string())


def boolean_tokens(contract: DataContract | None) -> dict[str, tuple[str, str]]:
    """Each boolean feature's (true, false) token for a native boolean column."""
    if contract is None:
        return {}
    return {n: (s.true_values[0], s.false_values[0]) for n, s in contract.features.items() if s.type == "boolean"}


def as_text(path: Path, batch: pa.RecordBatch, booleans: dict[str, tuple[str, str]]) -> pa.RecordBatch:
    """Every column of ``batch`` as text tokens (see the module's docstring)."""
    columns = []
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        try:
            columns.append(_column_text(column, booleans.get(name)))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise DataError(f"{path}: column {name!r} ({column.type}) cannot be read as text: {exc}") from None
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def _column_text(column: pa.Array, tokens: tuple[str, str] | None) -> pa.Array:
    if column.type == pa.string() or column.type == CODED:
        return column
    if tokens is not None and pa.types.is_boolean(column.type):
        return pc.if_else(column, pa.scalar(tokens[0]), pa.scalar(tokens[1]))
    return column.cast(pa.string())
