"""The train/val/test split files that prepare and featurize write and later stages read."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tabrepro.errors import DataError

SPLITS = ("train", "val", "test")


def read_splits(directory: str | Path) -> dict[str, pd.DataFrame]:
    """Read ``{train,val,test}.parquet`` from a stage output folder."""
    directory = Path(directory)
    missing = [s for s in SPLITS if not (directory / f"{s}.parquet").is_file()]
    if missing:
        raise DataError(f"{directory}: missing split file(s) {missing}; run the stage that writes them")
    return {s: pd.read_parquet(directory / f"{s}.parquet") for s in SPLITS}
