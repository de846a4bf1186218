"""The outcomes report: a typed JSON document, its figures and a summary for people.

``build_report`` is pure (the join's result, the params and the test-split figures in; the report out);
``write_outputs`` publishes the JSON and the figures folder together (staged: a failure changes neither).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict

from tabrepro.evaluation.figures import save_figure  # sets the Agg backend before pyplot is used
from tabrepro.io.staging import staged_outputs
from tabrepro.outcomes.ab import ABResult, candidates, compare, plan_size
from tabrepro.outcomes.decision import ConceptVerdict, judge_concept
from tabrepro.outcomes.join import JoinCounts, JoinResult
from tabrepro.outcomes.performance import WindowPerformance, measure
from tabrepro.outcomes.settings import OutcomesParams

ABVerdict = Literal["promote", "rollback", "continue", "none"]


class Reference(BaseModel):
    """The test split's figures (``reports/metrics.json``): the reference lines and the plans' inputs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str
    metrics: dict[str, float]
    positive_rate: float


class OutcomesReport(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    params: OutcomesParams
    reference: Reference
    labels: JoinCounts
    windows: list[WindowPerformance]
    concept: ConceptVerdict
    ab: list[ABResult]
    ab_verdict: ABVerdict
    figures: list[str] = []


def build_report(result: JoinResult, params: OutcomesParams, reference: Reference) -> OutcomesReport:
    """Live performance, the concept-drift verdict and an A/B result per candidate."""
    windows = measure(result, params)
    auc = reference.metrics[params.metric]
    concept = judge_concept(windows, reference=auc, prevalence=reference.positive_rate, params=params)
    ab = [
        compare(
            result.joined, primary=primary, candidate=candidate, kind=kind, params=params,
            required=plan_size(params, auc=auc, prevalence=reference.positive_rate, ratio=ratio),
        )
        for primary, candidate, kind, ratio in candidates(result.predicted)
    ]  # fmt: skip
    return OutcomesReport(
        params=params, reference=reference, labels=result.counts, windows=windows, concept=concept,
        ab=ab, ab_verdict=overall_verdict(ab),
    )  # fmt: skip


def overall_verdict(ab: list[ABResult]) -> ABVerdict:
    """rollback if any candidate must go, else promote if one is shown better, else continue ("none": no A/B)."""
    verdicts = {r.verdict for r in ab}
    for verdict in ("rollback", "promote", "continue"):
        if verdict in verdicts:
            return verdict
    return "none"


def write_outputs(report: OutcomesReport, report_path: Path, figures_dir: Path) -> OutcomesReport:
    """Write the JSON report and one PNG per metric (the figures folder is replaced)."""
    with staged_outputs(report_path, figures_dir) as (staged_report, staged_figures):
        names = [p.name for p in save_figures(report, staged_figures)]
        report = report.model_copy(update={"figures": [str(figures_dir / n) for n in names]})
        staged_report.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return report


def save_figures(report: OutcomesReport, directory: Path) -> list[Path]:
    """``<metric>.png``: the metric per window with its CI band, one line per model and role; the test split's
    figure as a dashed reference line."""
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    rows = [
        {"window": pd.Timestamp(w.window), "model": f"{w.model_version} ({w.role})", "metric": name, **m.model_dump()}
        for w in report.windows
        for name, m in w.metrics.items()
        if m.value is not None
    ]
    frame = pd.DataFrame(rows)
    written = []
    for name in sorted(frame["metric"].unique()) if len(frame) else []:
        fig, ax = plt.subplots(figsize=(7, 4))
        for model, part in frame[frame["metric"] == name].groupby("model"):
            ax.plot(part["window"], part["value"], marker="o", label=model)
            ax.fill_between(part["window"], part["lo"], part["hi"], alpha=0.2)
        if name in report.reference.metrics:
            ax.axhline(report.reference.metrics[name], linestyle="--", color="black", label="test split")
        ax.set(title=f"live {name} per window ({1 - report.params.alpha:.0%} bootstrap CI)", ylabel=name)
        ax.legend(fontsize="small")
        fig.autofmt_xdate()
        written.append(save_figure(fig, directory / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"))
    return written


def format_summary(report: OutcomesReport, report_path: Path) -> str:
    """A few lines for people: the labels' fate, each window, the verdicts."""
    c = report.labels
    lines = [
        f"labels: {c.rows} rows: {c.on_time} on time, {c.late} late, {c.early} observed before any prediction, "
        f"{c.unknown} unknown id, {c.duplicate} duplicate, {c.conflicting} conflicting ({c.conflicting_keys} ids)"
    ]
    metric = report.params.metric
    for w in report.windows:
        m = w.metrics[metric]
        shown = "n/a" if m.value is None else f"{m.value:.3f} [{m.lo:.3f}, {m.hi:.3f}]"
        lines.append(
            f"  {w.window[:10]} {w.model_version} ({w.role}): {w.labelled}/{w.predicted} labelled "
            f"({w.coverage:.0%}), {metric} {shown}"
        )
    concept = report.concept
    lines += [f"  retrain: {r}" for r in concept.reasons] + [f"  waiting: {r}" for r in concept.waiting]
    lines.append(f"concept drift: {'RETRAIN' if concept.retrain else 'no retrain'} (test split {metric} "
                 f"{concept.reference:.3f}, tolerance {concept.tolerance:g})")  # fmt: skip
    for r in report.ab:
        diff = "" if r.difference is None else f" difference {r.difference:+.4f} [{r.lo:+.4f}, {r.hi:+.4f}]"
        diff += "" if r.difference is None else f" on the planned {r.required} candidate labels,"
        lines.append(f"A/B {r.kind} {r.candidate} vs {r.primary}:{diff} {r.verdict}: {r.reason}")
    lines.append(f"report: {report_path}; figures: {', '.join(report.figures) or 'none'}")
    return "\n".join(lines) + "\n"
