"""``dvc plots`` rows and PNG figures of a regression or a multiclass evaluation (binary's are ``figures``').

- regression: ``predicted_vs_actual`` (actual, predicted per test row) and ``residuals`` (predicted, residual);
- multiclass: ``confusion`` (actual, predicted class labels per row: dvc's ``confusion`` template) and
  ``reliability`` (top-label mean confidence against accuracy per confidence bin).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import confusion_matrix

from tabrepro.config.precision import DEFAULT_DECIMALS, rounded
from tabrepro.evaluation.figures import save_figure
from tabrepro.evaluation.multiclass import reliability_points

Points = dict[str, list[dict[str, Any]]]


def regression_points(y: np.ndarray, pred: np.ndarray, *, decimals: int = DEFAULT_DECIMALS) -> Points:
    _r = partial(rounded, decimals=decimals)
    return {
        "predicted_vs_actual": [{"actual": _r(a), "predicted": _r(p)} for a, p in zip(y, pred, strict=True)],
        "residuals": [{"predicted": _r(p), "residual": _r(a - p)} for a, p in zip(y, pred, strict=True)],
    }


def multiclass_points(
    y: np.ndarray, proba: np.ndarray, classes: tuple[str, ...], *, bins: int = 10, decimals: int = DEFAULT_DECIMALS
) -> Points:
    _r = partial(rounded, decimals=decimals)
    pred = proba.argmax(axis=1)
    return {
        "confusion": [{"actual": classes[a], "predicted": classes[p]} for a, p in zip(y, pred, strict=True)],
        "reliability": [{k: _r(v) for k, v in row.items()} for row in reliability_points(y, proba, bins=bins)],
    }


def save_regression_figures(points: Points, directory: str | Path, *, unit: str | None = None) -> list[Path]:
    """predicted_vs_actual.png (with the identity line) and residuals.png."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    suffix = f" ({unit})" if unit else ""
    actual = [r["actual"] for r in points["predicted_vs_actual"]]
    predicted = [r["predicted"] for r in points["predicted_vs_actual"]]
    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    ax.scatter(actual, predicted, s=6, alpha=0.5)
    lo, hi = min(actual + predicted), max(actual + predicted)
    ax.plot([lo, hi], [lo, hi], linestyle="--", color="grey", linewidth=1)
    ax.set(xlabel=f"actual{suffix}", ylabel=f"predicted{suffix}", title="Predicted vs actual (test)")
    written = [save_figure(fig, directory / "predicted_vs_actual.png")]
    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    ax.scatter(predicted, [r["residual"] for r in points["residuals"]], s=6, alpha=0.5)
    ax.axhline(0, color="grey", linestyle="--", linewidth=1)
    ax.set(xlabel=f"predicted{suffix}", ylabel="actual - predicted", title="Residuals (test)")
    written.append(save_figure(fig, directory / "residuals.png"))
    return written


def save_multiclass_figures(
    y: np.ndarray, proba: np.ndarray, points: Points, classes: tuple[str, ...], directory: str | Path
) -> list[Path]:
    """confusion.png (argmax, class order of the contract) and reliability.png (top label)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    counts = confusion_matrix(y, proba.argmax(axis=1), labels=list(range(len(classes))))
    fig, ax = plt.subplots(figsize=(1.2 * len(classes) + 2, 1.2 * len(classes) + 2), dpi=100)
    ax.imshow(counts, cmap="Blues")
    for (i, j), value in np.ndenumerate(counts):
        ax.text(j, i, str(value), ha="center", va="center")
    ticks = list(range(len(classes)))
    ax.set(xticks=ticks, yticks=ticks, xticklabels=classes, yticklabels=classes, xlabel="predicted", ylabel="actual")
    ax.set_title("Confusion matrix (test, argmax)")
    written = [save_figure(fig, directory / "confusion.png")]
    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    rows = points["reliability"]
    ax.plot([r["mean_confidence"] for r in rows], [r["accuracy"] for r in rows], marker="o")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    ax.set(xlabel="mean top-label confidence", ylabel="accuracy", title="Top-label reliability", xlim=(0, 1))
    written.append(save_figure(fig, directory / "reliability.png"))
    return written
