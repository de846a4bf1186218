"""Chunked reading and staged writing of the tables that batch scoring streams through.

Inputs are read as text in chunks of a fixed number of rows, so memory does not grow with the file: CSV with
Arrow's streaming reader (every needed column typed as string, "" kept as ""), Parquet a batch at a time (every
column cast to text, so a Parquet 1.0 reads "1" as a CSV export would). Outputs are written to
``<path>.partial`` and renamed into place only on ``commit()``: a run that fails leaves the previous file alone.
"""

from __future__ import annotations

import codecs
import csv
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from tabrepro.contract.rows import require_columns
from tabrepro.contract.spec import DataContract
from tabrepro.errors import DataError

FORMATS = {".csv": "csv", ".parquet": "parquet"}
_SAMPLE_BYTES = 1 << 20
_MIN_BLOCK, _MAX_BLOCK = 1 << 16, 1 << 20


def table_format(path: Path, *, role: str) -> str:
    """``csv`` or ``parquet`` from the file name; anything else is a ``DataError``."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"{role} {path}: unsupported extension {path.suffix!r}; use one of {sorted(FORMATS)}")
    return fmt


@dataclass(frozen=True)
class ChunkSource:
    """An opened input: its chunks of text columns, how its rows are numbered, its row count if known."""

    chunks: Iterator[pa.Table]
    number_label: str  # "line" (CSV: the header is line 1) or "row" (Parquet, 1-based)
    first_number: int
    total_rows: int | None


def open_chunks(path: Path, contract: DataContract, *, chunk_rows: int) -> ChunkSource:
    """Open ``path`` and check its header against the contract (a ``DataError`` before anything is read)."""
    if not path.is_file():
        raise DataError(f"{path}: input file not found")
    needed = [contract.id_column, *contract.features]
    if table_format(path, role="input") == "parquet":
        return _open_parquet(path, contract, needed, chunk_rows)
    return _open_csv(path, contract, needed, chunk_rows)


def _open_csv(path: Path, contract: DataContract, needed: list[str], chunk_rows: int) -> ChunkSource:
    with path.open("rb") as fh:
        sample = fh.read(_SAMPLE_BYTES)
    header, _, body = sample.partition(b"\n")
    if not sample.strip():
        raise DataError(f"{path}: the file is empty (no header, no rows)")
    try:
        names = next(csv.reader([header.rstrip(b"\r").decode("utf-8-sig")]))
    except UnicodeDecodeError:
        raise DataError(f"{path}: not valid UTF-8 in the header (line 1)") from None
    require_columns(names, contract, source=str(path))
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
                include_columns=needed,
                column_types=_text_types(contract),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise _csv_error(path, exc) from None
    return ChunkSource(_rechunk(_csv_batches(path, reader), chunk_rows), "line", 2, None)


def _text_types(contract: DataContract) -> dict[str, pa.DataType]:
    """Every needed column as text; categorical and boolean ones dictionary-encoded while parsing (their few
    distinct values are then checked once each, see ``rowcheck``)."""
    coded = pa.dictionary(pa.int32(), pa.string())
    types = {contract.id_column: pa.string()}
    return types | {n: coded if s.type != "numeric" else pa.string() for n, s in contract.features.items()}


def _csv_batches(path: Path, reader: pacsv.CSVStreamingReader) -> Iterator[pa.RecordBatch]:
    try:
        yield from reader
    except pa.ArrowInvalid as exc:
        raise _csv_error(path, exc) from None
    finally:
        reader.close()


def _csv_error(path: Path, exc: pa.ArrowInvalid) -> DataError:
    if "UTF8" in str(exc):
        where = _first_invalid_utf8(path)
        return DataError(f"{path}: not valid UTF-8{where} (save it as UTF-8 and retry)")
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


def _open_parquet(path: Path, contract: DataContract, needed: list[str], chunk_rows: int) -> ChunkSource:
    try:
        parquet = pq.ParquetFile(
            path, read_dictionary=_coded_columns(path, contract), buffer_size=1 << 20, pre_buffer=False
        )
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: cannot be read as Parquet: {exc}") from None
    require_columns(parquet.schema_arrow.names, contract, source=str(path))
    if parquet.metadata.num_rows == 0:
        raise DataError(f"{path}: the file has no data rows")
    batches = (_as_text(path, b) for b in parquet.iter_batches(batch_size=chunk_rows, columns=needed))
    return ChunkSource(_rechunk(batches, chunk_rows), "row", 1, parquet.metadata.num_rows)


def _coded_columns(path: Path, contract: DataContract) -> list[str]:
    """Text columns to read dictionary-encoded from Parquet (its own encoding of repeated strings, kept)."""
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: cannot be read as Parquet: {exc}") from None
    coded = [n for n, s in contract.features.items() if s.type != "numeric" and n in schema.names]
    return [n for n in coded if pa.types.is_string(schema.field(n).type)]


def _as_text(path: Path, batch: pa.RecordBatch) -> pa.RecordBatch:
    """Every column as text: string or dictionary<string> kept, anything else cast (a Parquet 1.0 reads "1")."""
    columns = []
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        keep = column.type == pa.string() or column.type == pa.dictionary(pa.int32(), pa.string())
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


class StagedWriter:
    """Writes tables to ``<path>.partial`` (CSV or Parquet by ``path``'s extension); ``commit`` renames it."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path, self.partial = path, path.with_name(path.name + ".partial")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if table_format(path, role="output") == "parquet":
                self._writer: pq.ParquetWriter | pacsv.CSVWriter = pq.ParquetWriter(self.partial, schema)
            else:
                self._writer = pacsv.CSVWriter(self.partial, schema)
        except OSError as exc:
            raise DataError(f"{path}: cannot write {self.partial}: {exc}") from None
        self._schema, self._closed = schema, False

    def write(self, table: pa.Table) -> None:
        self._writer.write_table(table.cast(self._schema))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._writer.close()

    def commit(self) -> None:
        self.close()
        os.replace(self.partial, self.path)
