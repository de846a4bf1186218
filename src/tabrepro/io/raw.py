"""The one reader of raw tables: CSV or Parquet, every column as text, rows numbered as error messages number them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tabrepro.errors import DataError


def read_raw(path: str | Path, *, fmt: str) -> pd.DataFrame:
    """Read every column as text. CSV rows are indexed by their line number so that reports point at lines."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: raw data file not found")
    try:
        if fmt == "csv":
            raw = pd.read_csv(path, dtype="str", keep_default_na=False, na_values=[], encoding="utf-8")
            raw.index = pd.RangeIndex(2, len(raw) + 2)
        else:
            raw = pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty (no header, no rows)") from None
    except (UnicodeDecodeError, pd.errors.ParserError, OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot be read as {fmt}: {exc}") from None
    return raw
