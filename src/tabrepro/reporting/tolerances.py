"""``--fail-on KEY:TOL`` for ``tabrepro report``: parse a tolerance, find its metric, judge the change. Pure.

A negative TOL means higher is better and the metric may drop by at most ``|TOL|`` (``roc_auc:-0.005``); a positive
TOL means lower is better and it may rise by at most ``TOL`` (``brier:+0.002``). KEY is the dotted key that
``dvc metrics diff`` prints, optionally prefixed with its metrics file (``reports/metrics.json:roc_auc:-0.005``).

The metrics of every task have a known direction (``metric_direction``: ``METRIC_DIRECTIONS`` of
``tabrepro.artefacts``, so lower RMSE, MAE, log-loss and ECE are better): for them an unsigned TOL takes the
metric's direction (``rmse:0.5`` may rise by at most 0.5, ``r2:0.01`` may drop by at most 0.01), and a sign that
contradicts it is refused (``rmse:-0.5`` would call a rise of RMSE an improvement).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from tabrepro.artefacts import METRIC_DIRECTIONS
from tabrepro.errors import TabreproError

# ``dvc metrics diff --json``: {metrics file: {dotted key: {"old": ..., "new": ..., "diff": ...}}}
DiffJson = Mapping[str, Mapping[str, Mapping[str, Any]]]
Status = Literal["ok", "broken", "new", "removed"]

# A change within floating-point noise of the tolerance counts as within it (0.9 - 0.88 is 0.020000000000000018).
_NOISE = 1e-12


class ReportError(TabreproError, ValueError):
    """The report cannot be made as asked; the message names the option, revision, file or key that is wrong."""


@dataclass(frozen=True)
class Tolerance:
    """One ``--fail-on`` value: ``key`` as written (possibly ``file:key``) and the signed tolerance."""

    spec: str
    key: str
    tol: float
    signed: bool = True  # the TOL was written with its sign; unsigned, the metric's direction gives it


@dataclass(frozen=True)
class Verdict:
    """What one tolerance says about the change of one metric from base (``old``) to workspace (``new``)."""

    tolerance: Tolerance
    file: str
    key: str
    old: float | None
    new: float | None
    status: Status

    @property
    def broken(self) -> bool:
        """A metric that got worse than allowed, or that the workspace no longer reports, fails the check."""
        return self.status in ("broken", "removed")


def parse_tolerance(spec: str) -> Tolerance:
    """``'roc_auc:-0.005'`` -> ``Tolerance(key='roc_auc', tol=-0.005)``; the tolerance is what follows the last ':'."""
    key, sep, tol_text = spec.strip().rpartition(":")
    if not sep or not key or not tol_text:
        raise ReportError(f"--fail-on {spec!r}: expected KEY:TOL, e.g. roc_auc:-0.005 or brier:+0.002")
    try:
        tol = float(tol_text)
    except ValueError:
        raise ReportError(f"--fail-on {spec!r}: tolerance {tol_text!r} is not a number") from None
    if not math.isfinite(tol) or tol == 0:
        raise ReportError(
            f"--fail-on {spec!r}: tolerance must be a non-zero finite number, got {tol_text!r} "
            "(negative: may drop by at most |TOL|; positive: may rise by at most TOL)"
        )
    return Tolerance(spec=spec.strip(), key=key, tol=tol, signed=tol_text.strip()[:1] in "+-")


def metric_direction(key: str, *, scores: int | None = None) -> int | None:
    """+1 when higher is better, -1 when lower is, ``None`` when unknown, for a dotted metrics key: its last
    part (``baselines.ridge.rmse``), a CI bound's metric (``rmse_ci.lo``), a difference to a baseline
    (``vs_baselines.ridge.rmse_diff``: as the metric), the train stage's validation score (``model_val_rmse``: as
    the metric), a gap between groups (``gap``, ``*_gap``: lower is better), and tune's CV scores: ROC-AUC
    (``best_cv_roc_auc``, ``cv_roc_auc_mean``), the objective's (``best_cv_score``, ``cv_score_mean``: ``scores``,
    the direction its file records, see ``score_direction``) and a family's distance behind the best
    (``diff_to_best``: lower is better)."""
    parts = key.split(".")
    name = parts[-1].removeprefix("model_val_")
    if name in ("lo", "hi") and len(parts) > 1 and parts[-2].endswith("_ci"):
        name = parts[-2].removesuffix("_ci")
    if name == "gap" or name.endswith("_gap") or name == "diff_to_best":
        return -1
    if name in ("best_cv_roc_auc", "cv_roc_auc_mean"):
        return 1
    if name in ("best_cv_score", "cv_score_mean"):
        return scores
    return METRIC_DIRECTIONS.get(name.removesuffix("_diff"))


def score_direction(entries: Mapping[str, Mapping[str, Any]]) -> int | None:
    """The direction of a metrics file's objective scores, from its ``direction`` key as ``dvc metrics diff``
    prints it (tune's metrics: ``minimize`` -> -1, ``maximize`` -> +1); ``None`` when it records none."""
    entry = entries.get("direction") or {}
    recorded = entry.get("new", entry.get("old"))
    return {"minimize": -1, "maximize": 1}.get(recorded) if isinstance(recorded, str) else None


def directed(tolerance: Tolerance, key: str, *, scores: int | None = None) -> Tolerance:
    """``tolerance`` with the sign that metric ``key``'s direction gives an unsigned TOL; a ``ReportError`` when
    a written sign contradicts the direction. Metrics of unknown direction keep the TOL as written."""
    direction = metric_direction(key, scores=scores)
    if direction is None:
        return tolerance
    wanted = -abs(tolerance.tol) if direction > 0 else abs(tolerance.tol)
    if tolerance.signed and wanted != tolerance.tol:
        better, worse = ("higher", "drop") if direction > 0 else ("lower", "rise")
        fixed = f"{tolerance.key}:{wanted:+g}"
        raise ReportError(
            f"--fail-on {tolerance.spec!r}: {better} {key} is better, so the sign of TOL is wrong; "
            f"write {fixed} (it may {worse} by at most {abs(wanted):g}), or leave the sign out"
        )
    return replace(tolerance, tol=wanted)


def parse_tolerances(values: Iterable[str]) -> list[Tolerance]:
    """Every ``--fail-on`` value, each possibly a comma-separated list of ``KEY:TOL``."""
    return [parse_tolerance(part) for value in values for part in value.split(",") if part.strip()]


def resolve_metric(tolerance: Tolerance, keys_by_file: Mapping[str, Mapping[str, Any]]) -> tuple[str, str]:
    """The ``(metrics file, key)`` a tolerance names; unknown and ambiguous keys are errors."""
    head, sep, rest = tolerance.key.partition(":")
    if sep and head in keys_by_file:
        if rest not in keys_by_file[head]:
            raise ReportError(f"--fail-on {tolerance.spec!r}: {head} has no metric {rest!r}")
        return head, rest
    files = sorted(file for file, keys in keys_by_file.items() if tolerance.key in keys)
    if not files:
        known = ", ".join(sorted(keys_by_file)) or "none"
        raise ReportError(f"--fail-on {tolerance.spec!r}: no metric {tolerance.key!r} in any metrics file ({known})")
    if len(files) > 1:
        raise ReportError(
            f"--fail-on {tolerance.spec!r}: {tolerance.key!r} is in several metrics files ({', '.join(files)}); "
            f"prefix the file, e.g. {files[0]}:{tolerance.spec}"
        )
    return files[0], tolerance.key


def judge_change(old: float | None, new: float | None, tol: float) -> tuple[float | None, Status]:
    """The change ``new - old`` and whether it stays within ``tol`` (signed, see the module docstring)."""
    if new is None:
        return None, "removed"
    if old is None:
        return None, "new"
    delta = new - old
    broken = delta < tol - _NOISE if tol < 0 else delta > tol + _NOISE
    return delta, "broken" if broken else "ok"


def check_tolerances(tolerances: Iterable[Tolerance], metrics_diff: DiffJson) -> list[Verdict]:
    """Judge every tolerance against ``dvc metrics diff --all --json`` output."""
    verdicts = []
    for tolerance in tolerances:
        file, key = resolve_metric(tolerance, metrics_diff)
        tolerance = directed(tolerance, key, scores=score_direction(metrics_diff[file]))
        entry = metrics_diff[file][key]
        old, new = (_as_number(entry.get(side), tolerance, side) for side in ("old", "new"))
        _, status = judge_change(old, new, tolerance.tol)
        verdicts.append(Verdict(tolerance, file, key, old, new, status))
    return verdicts


def _as_number(value: Any, tolerance: Tolerance, side: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ReportError(f"--fail-on {tolerance.spec!r}: the {side} value {value!r} is not a number")
    return float(value)
