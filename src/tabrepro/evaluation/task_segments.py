"""Metrics per segment for regression and multiclass targets, and the largest gap of the task's headline metric
(regression RMSE, multiclass log-loss) between levels. Binary segments are ``tabrepro.evaluation.segments``'."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, mean_absolute_error, root_mean_squared_error

from tabrepro.evaluation.multiclass import multiclass_log_loss
from tabrepro.evaluation.segments import check_segment_columns, level_name

HEADLINE = {"regression": "rmse", "multiclass": "log_loss"}


def task_segment_metrics(
    frame: pd.DataFrame,
    y_true: np.ndarray,
    output: np.ndarray,
    *,
    task: str,
    columns: Sequence[str],
    n_classes: int = 0,
    min_rows: int = 30,
) -> dict[str, Any]:
    """``{column: {"levels": {level: metrics}, "metric": headline, "gap": max - min}}`` on the rows of ``frame``;
    a level smaller than ``min_rows`` reports its size only and takes no part in the gap."""
    check_segment_columns(columns, list(frame.columns))
    if not len(frame) == len(y_true) == len(output):
        raise ValueError(f"need one row per output: {len(frame)} rows, {len(y_true)} targets, {len(output)} outputs")
    headline = HEADLINE[task]
    result: dict[str, Any] = {}
    for column in columns:
        keys = frame[column].map(level_name).to_numpy()
        levels = {
            level: _level(y_true[keys == level], output[keys == level], task, n_classes, min_rows)
            for level in sorted(set(keys))
        }
        values = [m[headline] for m in levels.values() if headline in m]
        gap = float(max(values) - min(values)) if len(values) >= 2 else None
        result[column] = {"levels": levels, "metric": headline, "gap": gap}
    return result


def _level(y: np.ndarray, out: np.ndarray, task: str, n_classes: int, min_rows: int) -> dict[str, int | float]:
    if len(y) < min_rows:
        return {"n": len(y)}
    if task == "regression":
        return {
            "n": len(y),
            "rmse": float(root_mean_squared_error(y, out)),
            "mae": float(mean_absolute_error(y, out)),
            "mean_target": float(np.mean(y)),
        }
    return {
        "n": len(y),
        "log_loss": multiclass_log_loss(y, out, n_classes=n_classes),
        "accuracy": float(accuracy_score(y, out.argmax(axis=1))),
    }
