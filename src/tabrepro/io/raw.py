"""The one reader of raw tables: CSV or Parquet, every column as text, in numbered chunks of bounded size.

``open_raw`` streams a file in chunks of ``chunk_rows`` rows (batch scoring, drift); ``read_raw`` is the whole
file as one pandas frame (prepare). Both number rows as every message does: a CSV row by its line in the file
(the header is line 1, the first data row line 2), a Parquet row from 1. They read the same tokens (CSV with
Arrow's streaming reader, every column typed as string and "" kept as ""; Parquet a batch at a time, every column
cast to text, so a Parquet 1.0 reads "1" as a CSV export would) and give the same errors for an empty file, a file
that is not UTF-8 and missing columns.
"""

from __future__ import annotations

import codecs
import csv
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

CHUNK_ROWS = 100_000
_WHOLE = 1 << 62  # chunk_rows of a whole-table read: one chunk
_SAMPLE_BYTES = 1 << 20
_MIN_BLOCK, _MAX_BLOCK = 1 << 16, 1 << 20
_CODED = pa.dictionary(pa.int32(), pa.string())


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


def read_raw(path: str | Path, *, fmt: str, contract: DataContract | None = None) -> pd.DataFrame:
    """The whole table as one frame of text, indexed by its rows' numbers (CSV: their lines). With ``contract``,
    every column it declares (the target too) is required."""
    required = contract.columns if contract is not None else ()
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
    names, sample, header, body = _csv_header(path)
    read = wanted.read(path, names)
    if not body.strip() and len(sample) < _SAMPLE_BYTES:
        raise DataError(f"{path}: the file has a header but no data rows")
    # Arrow's reader parses a block at a time and reads up to 32 blocks ahead: blocks of at most 1 MiB keep that
    # window small whatever the file size (rows are regrouped into chunks of chunk_rows); a block holds whole rows.
    lines = body.split(b"\n")
    longest = max(len(line) for line in [header, *lines])
    block = max(min(chunk_rows * len(body) // len(lines), _MAX_BLOCK), _MIN_BLOCK, 2 * longest)
    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=block),
            convert_options=pacsv.ConvertOptions(
                include_columns=read,
                column_types={c: _CODED if c in wanted.coded else pa.string() for c in read},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise _csv_error(path, exc) from None
    return RawChunks(_rechunk(_csv_batches(path, reader), chunk_rows), "line", 2, None)


def _csv_header(path: Path) -> tuple[list[str], bytes, bytes, bytes]:
    """The column names, and the first MiB of the file split into its header line and the rest."""
    with path.open("rb") as fh:
        sample = fh.read(_SAMPLE_BYTES)
    if not sample.strip():
        raise DataError(f"{path}: the file is empty (no header, no rows)")
    header, _, body = sample.partition(b"\n")
    try:
        names = next(csv.reader([header.rstrip(b"\r").decode("utf-8-sig")]))
    except UnicodeDecodeError:
        raise DataError(f"{path}: not valid UTF-8 at line 1 (the header); save it as UTF-8 and retry") from None
    return names, sample, header, body


def _csv_batches(path: Path, reader: pacsv.CSVStreamingReader) -> Iterator[pa.RecordBatch]:
    try:
        yield from reader
    except pa.ArrowInvalid as exc:
        raise _csv_error(path, exc) from None
    finally:
        reader.close()


def _csv_error(path: Path, exc: pa.ArrowInvalid) -> DataError:
    if "UTF8" in str(exc):
        return DataError(f"{path}: not valid UTF-8{_first_invalid_utf8(path)}; save it as UTF-8 and retry")
    return DataError(f"{path}: cannot be read as CSV: {exc}")


def _first_invalid_utf8(path: Path) -> str:
    """Where the first byte that is not UTF-8 is ("at line L (byte offset B)"); read only on the error path."""
    decoder, offset, newlines = codecs.getincrementaldecoder("utf-8")(), 0, 0
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(_SAMPLE_BYTES), b""):
            carried = len(decoder.getstate()[0])  # an unfinished character from the previous block
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                bad = offset - carried + exc.start
                newlines += block[: max(bad - offset, 0)].count(b"\n")
                return f" at line {newlines + 1} (byte offset {bad})"
            newlines += block.count(b"\n")
            offset += len(block)
    return ""


def _open_parquet(path: Path, wanted: _Header, chunk_rows: int) -> RawChunks:
    try:
        schema = pq.read_schema(path)
        dictionary = [n for n in wanted.coded if n in schema.names and pa.types.is_string(schema.field(n).type)]
        parquet = pq.ParquetFile(path, read_dictionary=dictionary, buffer_size=1 << 20, pre_buffer=False)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: cannot be read as Parquet: {exc}") from None
    read = wanted.read(path, parquet.schema_arrow.names)
    if parquet.metadata.num_rows == 0:
        raise DataError(f"{path}: the file has no data rows")
    batches = (_as_text(path, b) for b in parquet.iter_batches(batch_size=min(chunk_rows, 1 << 20), columns=read))
    return RawChunks(_rechunk(batches, chunk_rows), "row", 1, parquet.metadata.num_rows)


def _as_text(path: Path, batch: pa.RecordBatch) -> pa.RecordBatch:
    """Every column as text: string or dictionary<string> kept, anything else cast (a Parquet 1.0 reads "1")."""
    columns = []
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        keep = column.type == pa.string() or column.type == _CODED
        try:
            columns.append(column if keep else column.cast(pa.string()))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise DataError(f"{path}: column {name!r} ({column.type}) cannot be read as text: {exc}") from None
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


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
