"""The rule every raw CSV keeps, and the scan that names the first physical line breaking it.

A raw CSV has one header line of distinct names and one row per physical line: no blank line between rows (blank
lines at the end are ignored), no quoted value running over a line end, every row with the header's number of
fields, no value over ``FIELD_LIMIT`` characters (Python's csv limit) and no line over ``LINE_LIMIT`` bytes. So a
row's number is its line in the file, in every message of ``prepare``, ``score``, ``drift`` and ``contract draft``.

The fast path (Arrow's reader in ``tabrepro.io.raw``) only notices that the rule is broken: an Arrow parse error,
a value too long in a batch, or fewer or more rows than lines. Then ``locate_breach`` reads the file again with
Python's csv module, line by line, and names the first line (and column) that breaks it: read only on that path.
"""

from __future__ import annotations

import codecs
import csv
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc

from tabrepro.errors import DataError

FIELD_LIMIT = 128 * 1024  # characters of one value: Python's csv.field_size_limit() default
LINE_LIMIT = 512 * 1024  # bytes of one line: Arrow's 1 MiB blocks then always hold a whole row
_READ = 1 << 20


@dataclass(frozen=True)
class _Record:
    first: int  # physical line the record starts on (1: the header)
    last: int  # physical line it ends on
    fields: list[str]


def read_header(path: Path) -> list[str]:
    """The header's names; a ``DataError`` naming line 1 when it breaks the rule (empty file, a name repeated,
    too long, a quoted name running over the line end)."""
    with path.open("rb") as fh:
        records = _records(path, fh)
        header = next(records, None)
        if header is None:
            raise DataError(f"{path}: the file is empty (no header, no rows)")
        if not header.fields:
            raise DataError(f"{path}: line 1 is empty; the header (the column names) must be the first line")
        problem = _field_problem(header, None) or _span_problem(header, None)
    if problem:
        raise DataError(f"{path}: line 1 (the header){problem}")
    check_names(f"{path}: line 1 (the header)", header.fields)
    return header.fields


def check_names(where: str, names: list[str]) -> None:
    """Refuse a header (CSV or Parquet) that repeats a name, naming its columns (from 1)."""
    repeated = [name for name, n in Counter(names).items() if n > 1]
    if repeated:
        columns = {name: ", ".join(str(i + 1) for i, n in enumerate(names) if n == name) for name in repeated}
        listed = "; ".join(f"{name!r} in columns {at}" for name, at in columns.items())
        raise DataError(f"{where}: repeated column names: {listed}; rename or drop the copies")


def locate_breach(path: Path) -> DataError | None:
    """The first line of ``path`` that breaks the rule, as a ``DataError`` naming it; None when none does."""
    try:
        return _first_breach(path)
    except DataError as exc:  # a line too long or not UTF-8, met while reading
        return exc


def _first_breach(path: Path) -> DataError | None:
    with path.open("rb") as fh:
        records = _records(path, fh)
        header = next(records).fields
        blank: int | None = None
        for record in records:
            if not record.fields:
                blank = record.first if blank is None else blank
                continue
            if blank is not None:
                return DataError(f"{path}: line {blank} is empty; a table has one row per line (delete it)")
            problem = _span_problem(record, header) or _width_problem(record, header)
            problem = problem or _field_problem(record, header)
            if problem:
                return DataError(f"{path}: line {record.first}{problem}")
    return None


def _records(path: Path, fh: BinaryIO) -> Iterator[_Record]:
    """The file's CSV records with the physical lines they span; a ``DataError`` for a line over the limit."""
    lines = _Lines(path, fh)
    reader = csv.reader(lines)
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, 2 * LINE_LIMIT))
    try:
        while True:
            first = lines.number + 1
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise DataError(f"{path}: line {first}: cannot be read as CSV ({exc})") from None
            yield _Record(first, lines.number, fields)
    finally:
        csv.field_size_limit(limit)


class _Lines:
    """The physical lines of a binary file as text, counted; a line over ``LINE_LIMIT`` bytes is a DataError."""

    def __init__(self, path: Path, fh: BinaryIO) -> None:
        self.path, self.fh, self.number = path, fh, 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self.fh.readline(LINE_LIMIT + 1)
        if not line:
            raise StopIteration
        self.number += 1
        if len(line) > LINE_LIMIT and not line.endswith(b"\n"):
            raise DataError(
                f"{self.path}: line {self.number} is longer than {LINE_LIMIT:,} bytes (the most a row may take)"
            )
        try:
            return line.decode("utf-8-sig" if self.number == 1 else "utf-8")
        except UnicodeDecodeError:
            raise DataError(f"{self.path}: not valid UTF-8{first_invalid_utf8(self.path)}; save it as UTF-8 and "
                            "retry") from None  # fmt: skip


def _column(index: int, header: list[str] | None) -> str:
    return f"column {header[index]!r}" if header and index < len(header) else f"column {index + 1}"


def _span_problem(record: _Record, header: list[str] | None) -> str:
    if record.last == record.first:
        return ""
    index = next((i for i, f in enumerate(record.fields) if "\n" in f or "\r" in f), len(record.fields) - 1)
    return (
        f", {_column(index, header)}: a quoted value runs over onto line {record.last}; a table has one row per "
        "line (remove the line break from the value)"
    )


def _width_problem(record: _Record, header: list[str]) -> str:
    if len(record.fields) == len(header):
        return ""
    return f" has {len(record.fields)} fields where the header (line 1) has {len(header)}"


def _field_problem(record: _Record, header: list[str] | None) -> str:
    index = next((i for i, f in enumerate(record.fields) if len(f) > FIELD_LIMIT), None)
    if index is None:
        return ""
    size = len(record.fields[index])
    return f", {_column(index, header)}: a value of {size:,} characters (at most {FIELD_LIMIT:,} are read)"


def count_rows(path: Path) -> int:
    """The rows the rule lets ``path`` hold: its physical lines after the header, blank lines at the end left out."""
    newlines, trailing, content = 0, 0, False
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(_READ), b""):
            newlines += block.count(b"\n")
            stripped = block.rstrip(b"\r\n")
            tail = block[len(stripped) :].count(b"\n")
            trailing = tail if stripped else trailing + tail
            content = content or bool(stripped)
    return newlines - trailing if content else 0  # lines with content (newlines - trailing + 1), less the header


def too_long(batch: pa.RecordBatch) -> bool:
    """Whether any value of ``batch`` (text or dictionary-encoded text) is longer than ``FIELD_LIMIT`` bytes."""
    for column in batch.columns:
        values = column.dictionary if pa.types.is_dictionary(column.type) else column
        if (
            not pa.types.is_string(values.type) or values.nbytes <= FIELD_LIMIT
        ):  # only text is read; short: done  # no value can be longer than all of them: most batches stop here
            continue
        longest = pc.max(pc.binary_length(values)).as_py() if len(values) else None
        if longest is not None and longest > FIELD_LIMIT:
            return True
    return False


def first_invalid_utf8(path: Path) -> str:
    """Where the first byte that is not UTF-8 is ("at line L (byte offset B)"); read only on the error path."""
    decoder, offset, newlines = codecs.getincrementaldecoder("utf-8")(), 0, 0
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(_READ), b""):
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
