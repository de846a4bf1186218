"""PNG figures of a drift report: reference against current distribution, one per drifted feature.

Drawn from the report's ``distribution`` entries alone, so a report can be re-plotted without the data.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from tabrepro.evaluation.figures import save_figure
from tabrepro.monitoring.report import BinDistribution, DriftReport, FeatureDrift, LevelDistribution, ScoreDrift

Entry = FeatureDrift | ScoreDrift


def save_drift_figures(report: DriftReport, directory: str | Path) -> list[Path]:
    """``<feature>.png`` for every drifted feature, and ``predicted_probability.png`` when the scores drifted."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    entries: list[tuple[str, Entry]] = [(name, f) for name, f in report.features.items() if f.drifted]
    if isinstance(report.score, ScoreDrift) and report.score.drifted:
        entries.append((report.score.name, report.score))
    written = []
    for name, entry in entries:
        path = directory / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
        dist = entry.distribution
        if isinstance(dist, LevelDistribution):
            written.append(_levels(name, entry, dist, path))
        else:
            written.append(_histogram(name, entry, dist, path))
    return written


def _title(name: str, entry: Entry) -> str:
    test = f", {entry.test} p {entry.p_value:.2g}" if entry.test and entry.p_value is not None else ""
    psi = "n/a" if entry.psi is None else f"{entry.psi:.3f}"
    return f"{name}: PSI {psi} ({entry.band or 'n/a'}){test}"


def _histogram(name: str, entry: Entry, dist: BinDistribution, path: Path) -> Path:
    """Step histograms (density) over the reference's quantile bins; the outer bins reach the data's extremes."""
    import matplotlib.pyplot as plt

    edges = np.asarray(dist.edges, dtype=float)
    widths = np.maximum(np.diff(edges), 1e-12)
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.stairs(np.asarray(dist.reference) / widths, edges, label="reference (train)", linewidth=2)
    ax.stairs(np.asarray(dist.current) / widths, edges, label="current", linewidth=2, linestyle="--")
    ax.set(xlabel=name, ylabel="density (share per unit)", title=_title(name, entry))
    ax.legend()
    return save_figure(fig, path)


def _levels(name: str, entry: Entry, dist: LevelDistribution, path: Path) -> Path:
    """Side-by-side bars of each level's share (levels absent from both left out), unknown levels as one bar."""
    import matplotlib.pyplot as plt

    shown = [i for i, (r, c) in enumerate(zip(dist.reference, dist.current, strict=True)) if r or c]
    y = np.arange(len(shown))
    fig, ax = plt.subplots(figsize=(6, 0.45 * len(y) + 1.5), dpi=100)
    ax.barh(y - 0.2, [dist.reference[i] for i in shown], height=0.4, label="reference (train)")
    ax.barh(y + 0.2, [dist.current[i] for i in shown], height=0.4, label="current")
    ax.set_yticks(y, [dist.levels[i] for i in shown])
    ax.invert_yaxis()
    ax.set(xlabel="share of values", title=_title(name, entry))
    ax.legend()
    return save_figure(fig, path)
