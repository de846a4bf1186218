"""A/B decision between the primary and a candidate (canary or shadow) on ROC-AUC, planned before it is run.

- Plan: the candidate's labelled records needed for a two-sided test at ``alpha`` to detect a difference of
  ``min_effect`` with ``power``, from the test split's AUC and positive rate alone (Hanley and McNeil variances;
  for a canary the primary has as many more as the traffic split gives it; for a shadow, scored on the same
  records, the unpaired size is used: conservative, as paired scores only lower the variance).
- Until the candidate has that many on-time labels the verdict is ``continue``, whatever the data say so far.
- Then the test runs once, on exactly the planned sample: the candidate's first ``required`` labelled records in
  time order (a canary: against the primary's records up to the same time; a shadow: the primary's answers for
  the same records). The plan is fixed by the candidate's first window (its traffic share), so re-running later
  gives the same verdict: looking again never buys another chance.
- Canary (disjoint groups): AUC difference with the sum of the two DeLong variances. Shadow (same records): the
  paired DeLong variance of the difference. ``promote`` when the (1 - alpha) CI of candidate - primary lies above
  0, else ``rollback``: the primary stays unless the candidate is shown better.
"""

from __future__ import annotations

from typing import Literal, TypedDict

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict
from scipy.stats import norm

from tabrepro.outcomes.settings import OutcomesParams
from tabrepro.outcomes.stats import delong, unpaired_sample_size

Verdict = Literal["promote", "rollback", "continue"]
ABKind = Literal["canary", "shadow"]


class ABResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ABKind
    primary: str
    candidate: str
    metric: str
    required: int
    n_candidate: int
    n_primary: int
    difference: float | None
    lo: float | None
    hi: float | None
    p_value: float | None
    verdict: Verdict
    reason: str


def plan_size(params: OutcomesParams, *, auc: float, prevalence: float, ratio: float) -> int:
    """The candidate's labelled records the test needs (``ratio``: primary records per candidate record)."""
    return unpaired_sample_size(
        auc, prevalence, effect=params.min_effect, alpha=params.alpha, power=params.power, ratio=ratio
    )


def auc_difference(
    y_c: np.ndarray, p_c: np.ndarray, y_p: np.ndarray, p_p: np.ndarray, *, paired: bool, alpha: float
) -> tuple[float, float, float, float]:
    """(candidate - primary AUC, CI lo, CI hi, two-sided p); ``paired``: the same records, ``y_c`` is ``y_p``."""
    if paired:
        auc, cov = delong(y_c, np.column_stack([p_c, p_p]))
        diff, var = auc[0] - auc[1], cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    else:
        (a_c,), v_c = delong(y_c, p_c)
        (a_p,), v_p = delong(y_p, p_p)
        diff, var = a_c - a_p, v_c[0, 0] + v_p[0, 0]
    se = float(np.sqrt(max(var, 1e-300)))
    z = norm.ppf(1 - alpha / 2)
    return float(diff), float(diff - z * se), float(diff + z * se), float(2 * norm.sf(abs(diff) / se))


def decide(lo: float, hi: float) -> tuple[Verdict, str]:
    if lo > 0:
        return "promote", "the candidate is better: the CI of the difference lies above 0"
    if hi < 0:
        return "rollback", "the candidate is worse: the CI of the difference lies below 0"
    return "rollback", "no difference shown at the planned sample size: the primary stays"


class _Head(TypedDict):
    """What every A/B result of one candidate starts with."""

    kind: ABKind
    primary: str
    candidate: str
    metric: str
    required: int


def compare(
    joined: pd.DataFrame, *, primary: str, candidate: str, kind: ABKind, required: int, params: OutcomesParams
) -> ABResult:
    """The A/B result of ``candidate`` (role ``kind``) against ``primary`` on ``joined``'s on-time labels."""
    on_time = joined[joined["status"] == "on_time"].sort_values(["ts", "kind", "key"], kind="stable")
    cand = on_time[(on_time["model_version"] == candidate) & (on_time["role"] == kind)]
    prim = on_time[(on_time["model_version"] == primary) & (on_time["role"] == "primary")]
    head: _Head = {"kind": kind, "primary": primary, "candidate": candidate, "metric": "roc_auc", "required": required}
    if len(cand) < required:
        more = required - len(cand)
        return ABResult(
            **head, n_candidate=len(cand), n_primary=len(prim), difference=None, lo=None, hi=None, p_value=None,
            verdict="continue", reason=f"{len(cand)} of {required} planned candidate labels; {more} more to go",
        )  # fmt: skip
    cand = cand.iloc[:required]
    if kind == "shadow":
        prim = cand[["kind", "key"]].merge(prim, on=["kind", "key"], how="inner")
        cand = prim[["kind", "key"]].merge(cand, on=["kind", "key"], how="inner")
    else:
        prim = prim[(prim["ts"] <= cand["ts"].max()) & prim["window"].isin(cand["window"].unique())]
    y_c, y_p = cand["y"].to_numpy(int), prim["y"].to_numpy(int)
    diff, lo, hi, p = auc_difference(
        y_c, cand["probability"].to_numpy(float), y_p, prim["probability"].to_numpy(float),
        paired=kind == "shadow", alpha=params.alpha,
    )  # fmt: skip
    verdict, reason = decide(lo, hi)
    return ABResult(
        **head, n_candidate=len(cand), n_primary=len(prim), difference=diff, lo=lo, hi=hi, p_value=p,
        verdict=verdict, reason=reason,
    )  # fmt: skip


def candidates(predicted: pd.DataFrame) -> list[tuple[str, str, ABKind, float]]:
    """(primary version, candidate version, kind, primary records per candidate record) of each candidate. The
    ratio is that of the candidate's first window, so the plan no longer moves once that window is over."""
    totals = predicted.groupby(["model_version", "role"])["predicted"].sum()
    primaries = [v for v, r in totals.index if r == "primary"]
    if not primaries:
        return []
    primary = max(primaries, key=lambda v: totals[(v, "primary")])
    found = []
    for (version, role), _ in totals.items():
        if role not in ("canary", "shadow"):
            continue
        mine = predicted[(predicted["model_version"] == version) & (predicted["role"] == role)]
        first = mine.loc[mine["window"].idxmin()]
        theirs = predicted[(predicted["model_version"] == primary) & (predicted["role"] == "primary")]
        alongside = theirs.loc[theirs["window"] == first["window"], "predicted"].sum()
        ratio = 1.0 if role == "shadow" else max(float(alongside), 1.0) / float(first["predicted"])
        kind: ABKind = "shadow" if role == "shadow" else "canary"
        found.append((primary, str(version), kind, ratio))
    return found
