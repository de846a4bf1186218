"""The prepared target per task (issue 21): its encoding, the strata the split keeps, and its summary per split.

- binary: int8, 1 for the positive label, 0 for the negative;
- multiclass: int16, the index of the label in ``target.classes`` (the column order of every probability output);
- regression: float64, the value.

A regression target is stratified on its quantile bins (``regression_strata``), so every split spans its range.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from tabrepro.contract.spec import TargetSpec
from tabrepro.errors import DataError

# a regression target is cut into at most this many quantile bins for the stratified split: deciles keep each split's
# spread of the target close to the whole table's, while each bin still holds enough rows for every split
MAX_REGRESSION_BINS = 10


def encode_target(values: pd.Series, target: TargetSpec, *, source: str) -> pd.Series:
    """The parsed target column (labels, or numbers for regression) as the prepared code of its task; a
    ``DataError`` when nothing varies (a single class, or a constant value)."""
    if target.task == "regression":
        encoded = values.astype("float64")
    elif target.task == "multiclass":
        encoded = values.map({label: code for code, label in enumerate(target.labels)}).astype("int16")
    else:
        encoded = (values == target.positive).astype("int8")
    if encoded.nunique() < 2:
        what = "a single value" if target.task == "regression" else "a single class"
        raise DataError(f"{source}: target {target.column!r} has {what}; nothing to learn")
    return encoded


def class_codes(target: TargetSpec) -> dict[str, int]:
    """Each label and its prepared code, in the order messages list them (binary: positive first, as always)."""
    if target.task == "binary":
        return {str(target.positive): 1, str(target.negative): 0}
    return {label: code for code, label in enumerate(target.labels)}


def regression_bins(rows: int, *, needed: int) -> int:
    """How many quantile bins a regression target of ``rows`` rows is stratified on: at most
    ``MAX_REGRESSION_BINS``, and few enough that each bin holds ``needed`` rows (what a class needs)."""
    return max(1, min(MAX_REGRESSION_BINS, rows // max(needed, 1)))


def regression_strata(values: pd.Series, *, bins: int) -> pd.Series | None:
    """The quantile bin of each value (ties broken by row order, so the bins hold equal counts), or None when
    there is a single bin."""
    if bins < 2:
        return None
    strata = pd.qcut(values.rank(method="first"), q=bins, labels=False)
    return strata.astype("int64")


def target_summary(values: pd.Series, target: TargetSpec) -> dict[str, Any]:
    """One split's target: binary its positive count and rate; multiclass the rows and share of every class;
    regression the rows, min, quartiles, max and mean."""
    rows = len(values)
    if target.task == "binary":
        return {"rows": rows, "positive": int(values.sum()), "positive_rate": round(float(values.mean()), 6)}
    if target.task == "multiclass":
        counts = {label: int((values == code).sum()) for label, code in class_codes(target).items()}
        return {"rows": rows, "counts": counts, "rates": {k: round(n / rows, 6) for k, n in counts.items()}}
    q = np.quantile(values.to_numpy(dtype="float64"), [0.0, 0.25, 0.5, 0.75, 1.0])
    stats = dict(zip(("min", "q1", "median", "q3", "max"), (float(v) for v in q), strict=True))
    return {"rows": rows, **{k: _round(v) for k, v in stats.items()}, "mean": _round(float(values.mean()))}


def _round(value: float) -> float:
    return round(value, 6) if math.isfinite(value) else value
