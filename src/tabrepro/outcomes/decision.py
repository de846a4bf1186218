"""Concept drift: does the served model still do as well on live labels as it did on the test split?

For every window of the primary (and of batch scores): with fewer on-time labels than the window needs, no
verdict, and the number still needed; else the window has drifted when the whole (1 - alpha) bootstrap CI of the
metric lies below the test-split figure minus ``tolerance`` (above it plus ``tolerance`` for a metric where lower
is better). Retrain when any window has drifted.

"Needs": the fewest labels whose CI of the AUC would be at most ``tolerance`` wide on each side (Hanley and
McNeil's standard error at the test-split AUC and positive rate), so a drop of twice the tolerance would be seen.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from tabrepro.outcomes.performance import WindowPerformance
from tabrepro.outcomes.settings import OutcomesParams
from tabrepro.outcomes.stats import labels_for_precision

JUDGED_ROLES = ("primary", "batch")
Status = Literal["too_few_labels", "ok", "drifted"]


class ConceptWindow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    window: str
    model_version: str
    role: str
    labelled: int
    needed: int
    value: float | None
    lo: float | None
    hi: float | None
    status: Status


class ConceptVerdict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str
    reference: float
    floor: float
    tolerance: float
    windows: list[ConceptWindow]
    retrain: bool
    reasons: list[str]
    waiting: list[str]


def judge_concept(
    windows: list[WindowPerformance], *, reference: float, prevalence: float, params: OutcomesParams
) -> ConceptVerdict:
    """The concept-drift verdict over every judged window (see the module doc)."""
    needed = labels_for_precision(reference, prevalence, half_width=params.tolerance, alpha=params.alpha)
    floor = reference - params.tolerance
    judged, reasons, waiting = [], [], []
    status: Status
    for w in (w for w in windows if w.role in JUDGED_ROLES):
        m = w.metrics[params.metric]
        if w.labelled < needed or m.hi is None:
            status = "too_few_labels"
            waiting.append(
                f"{w.window[:10]} {w.model_version} ({w.role}): {w.labelled} on-time labels of {needed} needed, "
                f"{max(needed - w.labelled, 1)} more"
            )
        elif m.hi < floor:
            status = "drifted"
            reasons.append(
                f"{w.window[:10]} {w.model_version} ({w.role}): {params.metric} {m.value:.3f} "
                f"(CI {m.lo:.3f} to {m.hi:.3f}) below the test split's {reference:.3f} - tolerance "
                f"{params.tolerance:g} = {floor:.3f}, on {w.labelled} labels"
            )
        else:
            status = "ok"
        judged.append(
            ConceptWindow(
                window=w.window, model_version=w.model_version, role=w.role, labelled=w.labelled,
                needed=needed, value=m.value, lo=m.lo, hi=m.hi, status=status,
            )
        )  # fmt: skip
    return ConceptVerdict(
        metric=params.metric, reference=reference, floor=floor, tolerance=params.tolerance, windows=judged,
        retrain=bool(reasons), reasons=reasons, waiting=waiting,
    )  # fmt: skip
