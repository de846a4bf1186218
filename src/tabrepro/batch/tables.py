"""The tables that batch scoring streams through: its inputs opened with the one raw reader, its outputs staged.

Inputs are read as text in chunks of a fixed number of rows by ``tabrepro.io.raw`` (the reader ``prepare`` and
``drift`` use, with the same row numbers and errors), so memory does not grow with the file. Outputs are written
to ``<path>.partial`` and renamed into place only on ``commit()``: a run that fails leaves the previous file alone.
A distributed run reads many files: ``expand_inputs`` turns a folder or a glob into them, in a fixed order.
"""

from __future__ import annotations

import glob
import os
from contextlib import suppress
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from tabrepro.contract.spec import DataContract
from tabrepro.errors import DataError
from tabrepro.io.raw import RawChunks, open_raw

FORMATS = {".csv": "csv", ".parquet": "parquet"}


def table_format(path: Path, *, role: str) -> str:
    """``csv`` or ``parquet`` from the file name; anything else is a ``DataError``."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"{role} {path}: unsupported extension {path.suffix!r}; use one of {sorted(FORMATS)}")
    return fmt


def expand_inputs(spec: str | Path) -> list[Path]:
    """The tables a folder (its ``.csv`` / ``.parquet`` files, not those starting with ``_`` or ``.``), a glob
    pattern or a single file names, sorted by path (the order of output parts and rejects); a ``DataError`` when
    it names none or a file of another kind."""
    text = str(spec)
    path = Path(text)
    if path.is_dir():
        files = [p for p in path.iterdir() if p.is_file() and p.suffix.lower() in FORMATS and p.name[0] not in "_."]
        if not files:
            raise DataError(f"input {path}: no .csv or .parquet files in this folder")
    elif glob.has_magic(text):
        files = [Path(p) for p in glob.glob(text) if Path(p).is_file()]
        if not files:
            raise DataError(f"input {text}: the pattern matches no file")
    elif path.is_file():
        files = [path]
    else:
        raise DataError(f"input {path}: not found")
    for file in files:
        table_format(file, role="input")
    return sorted(files)


def open_chunks(path: Path, contract: DataContract, *, chunk_rows: int) -> RawChunks:
    """Open a scoring input with the one raw reader: the id (if the contract has one) and the features required
    and read (the target and other columns are ignored), booleans and categoricals dictionary-encoded; a
    ``DataError`` before any row."""
    needed = [*contract.id_columns, *contract.features]
    fmt = table_format(path, role="input")
    return open_raw(path, contract, fmt=fmt, required=needed, columns=needed, coded=True, chunk_rows=chunk_rows)


class OutputWriteError(DataError):
    """An output could not be written (a full disk, a quota, an I/O error): its ``.partial`` file is removed."""


class StagedWriter:
    """Writes tables to ``<path>.partial`` (CSV or Parquet by ``path``'s extension); ``commit`` renames it. A write
    that fails (e.g. a full disk) is an ``OutputWriteError`` naming the file; ``discard`` removes the partial file."""

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
        try:
            self._writer.write_table(table.cast(self._schema))
        except OSError as exc:
            raise self._failed(exc) from None

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._writer.close()
            except OSError as exc:
                raise self._failed(exc) from None

    def commit(self) -> None:
        self.close()
        try:
            os.replace(self.partial, self.path)
        except OSError as exc:
            raise self._failed(exc) from None

    def discard(self) -> None:
        """Close (ignoring a failure: the file is dropped) and remove the partial file."""
        with suppress(OutputWriteError):
            self.close()
        self.partial.unlink(missing_ok=True)

    def _failed(self, exc: OSError) -> OutputWriteError:
        return OutputWriteError(f"{self.path}: cannot write {self.partial}: {exc.strerror or exc}")
