"""ONNX feeds built straight from validated records: no pandas in the request path."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tabrepro.contract.spec import DataContract

_ROW_WISE_MAX = 64


def feeds_from_records(records: Sequence[dict[str, Any]], contract: DataContract) -> dict[str, np.ndarray]:
    """One (n, 1) array per contract feature: float32 for numbers and booleans (NaN when missing), text for
    categoricals ("" when missing: ONNX string tensors cannot hold NaN, and "" encodes as all zeros).

    Small requests are built row-wise (two array constructions in all: ~9 µs for one record instead of ~15 µs for
    one per feature); large batches column-wise, which avoids transposing big object arrays.
    """
    numeric = contract.numeric_features + contract.boolean_features
    categorical = contract.categorical_features
    if len(records) <= _ROW_WISE_MAX:
        numbers = np.array([[r[n] for n in numeric] for r in records], dtype=np.float32).T.copy()
        texts = np.array([[r[n] or "" for n in categorical] for r in records], dtype=object).T.copy()
        feeds = {name: numbers[i].reshape(-1, 1) for i, name in enumerate(numeric)}
        return feeds | {name: texts[i].reshape(-1, 1) for i, name in enumerate(categorical)}
    n = len(records)
    feeds = {name: np.array([r[name] for r in records], dtype=np.float32).reshape(n, 1) for name in numeric}
    return feeds | {
        name: np.array([r[name] or "" for r in records], dtype=object).reshape(n, 1) for name in categorical
    }
