"""The one reader of raw tables: CSV or Parquet, every column as text, in numbered chunks of bounded size.

``open_raw`` streams a file in chunks of ``chunk_rows`` rows (batch scoring, drift); ``read_raw`` is the whole
file as one pandas frame (prepare). Both number rows as every message does: a CSV row by its line in the file
(the header is line 1, the first data row line 2), a Parquet row from 1. They read the same tokens (CSV with
Arrow's streaming reader, every column typed as string and "" kept as ""; Parquet a batch at a time, every column
cast to text, so a Parquet 1.0 reads "1" as a CSV export would) and give the same errors for an empty file, a file
that is not UTF-8 and missing columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from tabrepro.contract.grammar import require_columns
from tabrepro.contract.spec import DataContract
from tabrepro.errors import DataError
from tabrepro.io.csv_rules import (
    FIELD_LIMIT,
    check_names,
    count_rows,
    first_invalid_utf8,
    locate_breach,
    read_header,
    too_long,
)
from tabrepro.io.parquet_tokens import CODED, as_text, boolean_tokens

CHUNK_ROWS = 100_000
_WHOLE = 1 << 62  # chunk_rows of a whole-table read: one chunk
_SAMPLE_BYTES = 1 << 20
_BLOCK = 1 << 20


@dataclass(frozen=True)
class RawChunks:
    """An opened raw table: its chunks of text columns, how its rows are numbered, its row count if known."""

    chunks: Iterator[pa.Table]
    number_label: str  # "line" (CSV: the header is line 1) or "row" (Parquet, from 1)
    first_number: int
    total_rows: int | None

    def frames(self) -> Iterator[pd.DataFrame]:
        """The chunks as pandas frames of text, indexed by their rows' numbers."""
        number = self.first_number
        for chunk in self.chunks:
            index = pd.RangeIndex(number, number + chunk.num_rows)
            number += chunk.num_rows
            yield chunk.to_pandas().astype("str").set_axis(index)


def open_raw(
    path: str | Path,
    contract: DataContract | None,
    *,
    fmt: str,
    required: Sequence[str] = (),
    columns: Sequence[str] | None = None,
    coded: bool = False,
    chunk_rows: int = CHUNK_ROWS,
) -> RawChunks:
    """Open ``path`` (``fmt`` "csv" or "parquet") and check its header before anything is read: a ``DataError``
    names the ``required`` columns of ``contract`` it lacks. ``columns``: those to read when present (default:
    all). ``coded``: read the contract's boolean and categorical features dictionary-encoded (the rows adapter
    then checks their few distinct values once each)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: not found")
    header = _Header(contract, required, columns, _coded_columns(contract) if coded and contract else set())
    opener = _open_parquet if fmt == "parquet" else _open_csv
    return opener(path, header, chunk_rows)


def read_raw(path: str | Path, *, fmt: str, contract: DataContract | None = None, require: bool = True) -> pd.DataFrame:
    """The whole table as one frame of text, indexed by its rows' numbers (CSV: their lines). With ``contract``,
    every column it declares (the target too) is required, unless ``require`` is False (prepare names the missing
    ones in its contract report), and native Parquet booleans read as its tokens."""
    required = contract.columns if contract is not None and require else ()
    frames = list(open_raw(path, contract, fmt=fmt, required=required, chunk_rows=_WHOLE).frames())
    if not frames:
        raise DataError(f"{path}: the file has no data rows")
    return frames[0] if len(frames) == 1 else pd.concat(frames)


@dataclass(frozen=True)
class _Header:
    """What to check in a file's header and which of its columns to read, and how."""

    contract: DataContract | None
    required: Sequence[str]
    columns: Sequence[str] | None
    coded: set[str]

    def read(self, path: Path, names: list[str]) -> list[str]:
        """The columns to read, after refusing a header that lacks a required one."""
        if self.contract is not None and self.required:
            require_columns(names, self.contract, source=str(path), required=self.required)
        return [c for c in names if c in self.columns] if self.columns is not None else names


def _coded_columns(contract: DataContract) -> set[str]:
    return {n for n, s in contract.features.items() if s.type != "numeric"}


def _open_csv(path: Path, wanted: _Header, chunk_rows: int) -> RawChunks:
    names = read_header(path)
    read = wanted.read(path, names)
    with path.open("rb") as fh:
        sample = fh.read(_SAMPLE_BYTES)
    if not sample.partition(b"\n")[2].strip() and len(sample) < _SAMPLE_BYTES:
        raise DataError(f"{path}: the file has a header but no data rows")
    # Arrow's reader parses a block at a time and reads ahead a few blocks: 1 MiB blocks keep that window small
    # whatever the file size (rows are regrouped into chunks of chunk_rows), and hold any row the rule allows.
    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=_BLOCK),
            convert_options=pacsv.ConvertOptions(
                include_columns=read,
                column_types={c: CODED if c in wanted.coded else pa.string() for c in read},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise _csv_error(path, exc) from None
    return RawChunks(_rechunk(_csv_batches(path, reader), chunk_rows), "line", 2, None)


def _csv_batches(path: Path, reader: pacsv.CSVStreamingReader) -> Iterator[pa.RecordBatch]:
    """Arrow's batches, checked against the one CSV rule: a breach is named by its physical line."""
    rows = 0
    try:
        for batch in reader:
            if too_long(batch):
                raise locate_breach(path) or DataError(f"{path}: a value is longer than {FIELD_LIMIT:,} bytes")
            rows += batch.num_rows
            yield batch
    except pa.ArrowInvalid as exc:
        raise _csv_error(path, exc) from None
    finally:
        reader.close()
    if rows != count_rows(path):  # a blank or a quoted line break moved the rows off their lines
        raise locate_breach(path) or DataError(f"{path}: {rows} rows read from {count_rows(path)} lines")


def _csv_error(path: Path, exc: pa.ArrowInvalid) -> DataError:
    if "UTF8" in str(exc):
        return DataError(f"{path}: not valid UTF-8{first_invalid_utf8(path)}; save it as UTF-8 and retry")
    return locate_breach(path) or DataError(f"{path}: cannot be read as CSV: {exc}")


def _open_parquet(path: Path, wanted: _Header, chunk_rows: int) -> RawChunks:
    try:
        schema = pq.read_schema(path)
        check_names(str(path), schema.names)
        dictionary = [n for n in wanted.coded if n in schema.names and pa.types.is_string(schema.field(n).type)]
        parquet = pq.ParquetFile(path, read_dictionary=dictionary, buffer_size=1 << 20, pre_buffer=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        raise DataError(f"{path}: cannot be read as Parquet: {exc}") from None
    read = wanted.read(path, parquet.schema_arrow.names)
    if parquet.metadata.num_rows == 0:
        raise DataError(f"{path}: the file has no data rows")
    batches = _parquet_batches(path, parquet, read, boolean_tokens(wanted.contract), min(chunk_rows, 1 << 20))
    return RawChunks(_rechunk(batches, chunk_rows), "row", 1, parquet.metadata.num_rows)


def _parquet_batches(
    path: Path, parquet: pq.ParquetFile, columns: list[str], booleans: dict[str, tuple[str, str]], size: int
) -> Iterator[pa.RecordBatch]:
    """The file's batches as text; a damaged page (cut short, overwritten) is a ``DataError`` naming the file."""
    try:
        for batch in parquet.iter_batches(batch_size=size, columns=columns):
            yield as_text(path, batch, booleans)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        raise DataError(f"{path}: cannot be read as Parquet: {exc}") from None


def _rechunk(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """Tables of exactly ``rows`` rows (the last may be shorter), whatever size the reader's batches are."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        pending.append(batch)
        count += batch.num_rows
        while count >= rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, rows)
            rest = table.slice(rows)
            pending, count = rest.to_batches(), rest.num_rows
    if count:
        yield pa.Table.from_batches(pending)
