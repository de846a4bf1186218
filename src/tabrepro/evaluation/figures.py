"""Matplotlib figures (PNG): an evaluation, drawn from the points ``dvc plots`` shows, and a tuning study."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

_META = {"Software": None}  # no version stamp, so the same figure gives the same bytes


def save_evaluation_figures(
    points: dict[str, list[dict[str, Any]]], confusion: np.ndarray, directory: str | Path, *, threshold: float
) -> list[Path]:
    """Write roc.png, pr.png, calibration.png, confusion.png and cost.png into ``directory``."""
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
        _cost(points["cost"], threshold, directory / "cost.png"),
    ]
    return written


def save_explanation_figures(
    importance: list[dict[str, Any]],
    contributions: dict[str, np.ndarray] | None,
    directory: str | Path,
    *,
    top: int = 15,
) -> list[Path]:
    """importance.png (permutation ROC-AUC drop) and, where the model has them, contributions.png."""
    directory = Path(directory)
    rows = importance[:top][::-1]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(rows) + 1.2), dpi=100)
    ax.barh([r["feature"] for r in rows], [r["importance"] for r in rows], xerr=[r["importance_std"] for r in rows])
    ax.set(xlabel="ROC-AUC lost when shuffled (test)", title="Feature importance (permutation)")
    written = [save_figure(fig, directory / "importance.png")]
    if contributions is None:
        return written
    rng = np.random.default_rng(0)  # jitter only; fixed so the figure's bytes are reproducible
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(rows) + 1.2), dpi=100)
    for i, row in enumerate(rows):
        values = contributions[row["feature"]]
        ax.scatter(
            values, i + rng.uniform(-0.25, 0.25, len(values)), s=3, alpha=0.4, c=np.sign(values), cmap="coolwarm"
        )
    ax.axvline(0, color="grey", linewidth=1)
    ax.set(yticks=range(len(rows)), yticklabels=[r["feature"] for r in rows], xlabel="contribution (log-odds)")
    ax.set_title("Per-row feature contributions (test)")
    written.append(save_figure(fig, directory / "contributions.png"))
    return written


def _cost(rows: list[dict[str, Any]], threshold: float, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    for split in ("val", "test"):
        ax.plot([r["threshold"] for r in rows], [r[f"{split}_cost"] for r in rows], label=split)
    ax.axvline(threshold, color="grey", linestyle="--", linewidth=1, label=f"chosen {threshold:.3f}")
    ax.set(xlabel="threshold", ylabel="expected cost per row", title="Threshold vs expected cost", xlim=(0, 1))
    ax.legend()
    return save_figure(fig, path)


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
    return save_figure(fig, path)


def _confusion(counts: np.ndarray, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    ax.imshow(counts, cmap="Blues")
    for (i, j), value in np.ndenumerate(counts):
        ax.text(j, i, str(value), ha="center", va="center")
    ax.set(xticks=[0, 1], yticks=[0, 1], xlabel="predicted", ylabel="actual", title="Confusion matrix (test)")
    return save_figure(fig, path)


def save_tune_figures(study: Any, directory: str | Path, *, seed: int) -> list[Path]:
    """optimization_history.png and param_importances.png of an Optuna study (or a note that none ran)."""
    import optuna

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    done = [t for t in (study.trials if study else []) if t.state == optuna.trial.TrialState.COMPLETE]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    if done:
        values = [t.value for t in done]
        ax.scatter([t.number for t in done], values, s=12, label="trial")
        ax.plot([t.number for t in done], np.maximum.accumulate(values), color="C1", label="best so far")
        ax.legend(loc="lower right")
    else:
        ax.text(0.5, 0.5, "no search (tune.n_trials = 0)", ha="center", va="center", transform=ax.transAxes)
    ax.set(xlabel="trial", ylabel="CV ROC-AUC", title="Optimisation history")
    paths = [save_figure(fig, directory / "optimization_history.png")]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    importances = _importances(study, seed=seed) if len(done) >= 2 else {}
    if importances:
        names = list(importances)[::-1]
        ax.barh(names, [importances[n] for n in names])
    else:
        ax.text(0.5, 0.5, "fewer than 2 completed trials", ha="center", va="center", transform=ax.transAxes)
    ax.set(xlabel="importance (fANOVA)", title="Hyper-parameter importances")
    paths.append(save_figure(fig, directory / "param_importances.png"))
    return paths


def _importances(study: Any, *, seed: int) -> dict[str, float]:
    import optuna

    try:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
        return optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (RuntimeError, ValueError):  # e.g. every completed trial has the same params
        return {}


def save_figure(fig: Any, path: Path) -> Path:
    """Write ``fig`` to ``path`` reproducibly (no version stamp) and close it."""
    fig.tight_layout()
    fig.savefig(path, metadata=_META)
    plt.close(fig)
    return path
