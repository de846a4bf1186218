"""The tables that batch scoring streams through: its inputs opened with the one raw reader, its outputs staged.

Inputs are read as text in chunks of a fixed number of rows by ``tabrepro.io.raw`` (the reader ``prepare`` and
``drift`` use, with the same row numbers and errors), so memory does not grow with the file. Outputs are written
to ``<path>.partial`` and renamed into place only on ``commit()``: a run that fails leaves the previous file alone.
A distributed run reads many files: ``tabrepro.io.tables.expand_inputs`` turns a folder or a glob into them.
"""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from tabrepro.contract.spec import DataContract
from tabrepro.errors import DataError
from tabrepro.io.raw import RawChunks, open_raw
from tabrepro.io.tables import table_format


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
