"""Metrics per segment (the levels of a column such as ``Contract``) and the largest gap between segments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, precision_score, recall_score, roc_auc_score

from tabrepro.errors import ConfigError

GAP_METRICS = ("roc_auc", "recall", "precision", "positive_rate")


def check_segment_columns(columns: Sequence[str], available: Sequence[str]) -> None:
    """An unknown segment column is a ConfigError naming it and the columns there are."""
    unknown = [c for c in columns if c not in available]
    if unknown:
        raise ConfigError(f"segments: unknown column(s) {unknown}; the table has: {', '.join(available)}")


def segment_metrics(
    frame: pd.DataFrame,
    y_true: np.ndarray,
    proba: np.ndarray,
    *,
    columns: Sequence[str],
    threshold: float,
    min_rows: int = 30,
) -> dict[str, Any]:
    """``{column: {"levels": {level: metrics}, "<metric>_gap": max - min}}`` on the rows of ``frame``.

    A level smaller than ``min_rows`` or holding one class reports its size and positive rate only, and takes
    no part in the gaps (a 3-row segment's ROC-AUC is noise, not a finding). Missing values form a level.
    """
    check_segment_columns(columns, list(frame.columns))
    if not len(frame) == len(y_true) == len(proba):
        raise ValueError(f"need one row per score: {len(frame)} rows, {len(y_true)} labels, {len(proba)} scores")
    labels = (proba >= threshold).astype(int)
    result: dict[str, Any] = {}
    for column in columns:
        keys = frame[column].map(level_name).to_numpy()
        levels = {
            level: _level_metrics(y_true[keys == level], proba[keys == level], labels[keys == level], min_rows)
            for level in sorted(set(keys))
        }
        result[column] = {"levels": levels, **_gaps(levels)}
    return result


def _level_metrics(y: np.ndarray, p: np.ndarray, labels: np.ndarray, min_rows: int) -> dict[str, Any]:
    out: dict[str, Any] = {"n": len(y), "positive_rate": float(np.mean(y)), "mean_score": float(np.mean(p))}
    if len(y) < min_rows or len(np.unique(y)) < 2:
        return out
    return {
        **out,
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "recall": float(recall_score(y, labels, zero_division=0)),
        "precision": float(precision_score(y, labels, zero_division=0)),
    }


def _gaps(levels: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    gaps: dict[str, float | None] = {}
    for metric in GAP_METRICS:
        values = [m[metric] for m in levels.values() if "roc_auc" in m]
        gaps[f"{metric}_gap"] = float(max(values) - min(values)) if len(values) >= 2 else None
    return gaps


def level_name(value: Any) -> str:
    if pd.isna(value):
        return "(missing)"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # booleans are 0.0/1.0 after parsing; "1" reads better than "1.0"
    return str(value)
