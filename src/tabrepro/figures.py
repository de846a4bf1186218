"""Matplotlib figures of an evaluation (PNG), drawn from the same points that ``dvc plots`` shows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

_META = {"Software": None}  # no version stamp, so the same figure gives the same bytes


def save_evaluation_figures(
    points: dict[str, list[dict[str, Any]]], confusion: np.ndarray, directory: str | Path
) -> list[Path]:
    """Write roc.png, pr.png, calibration.png and confusion.png into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = [
        _line(points["roc"], "fpr", "tpr", "ROC curve", directory / "roc.png", diagonal=True),
        _line(points["pr"], "recall", "precision", "Precision-recall", directory / "pr.png"),
        _line(
            points["calibration"],
            "mean_predicted",
            "fraction_positive",
            "Calibration (reliability)",
            directory / "calibration.png",
            diagonal=True,
            markers=True,
        ),
        _confusion(confusion, directory / "confusion.png"),
    ]
    return written


def _line(
    rows: list[dict[str, Any]],
    x: str,
    y: str,
    title: str,
    path: Path,
    *,
    diagonal: bool = False,
    markers: bool = False,
) -> Path:
    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    ax.plot([r[x] for r in rows], [r[y] for r in rows], marker="o" if markers else None)
    if diagonal:
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    ax.set(xlabel=x, ylabel=y, title=title, xlim=(0, 1), ylim=(0, 1.02))
    fig.tight_layout()
    fig.savefig(path, metadata=_META)
    plt.close(fig)
    return path


def _confusion(counts: np.ndarray, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    ax.imshow(counts, cmap="Blues")
    for (i, j), value in np.ndenumerate(counts):
        ax.text(j, i, str(value), ha="center", va="center")
    ax.set(xticks=[0, 1], yticks=[0, 1], xlabel="predicted", ylabel="actual", title="Confusion matrix (test)")
    fig.tight_layout()
    fig.savefig(path, metadata=_META)
    plt.close(fig)
    return path
