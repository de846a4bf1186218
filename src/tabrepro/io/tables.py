"""Which tables a path names: a file's format by its extension, and the files of a folder or a glob, in a fixed
order. Shared by batch scoring, drift checks and outcomes, which all read many CSV / Parquet files."""

from __future__ import annotations

import glob
from pathlib import Path

from tabrepro.errors import DataError

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
