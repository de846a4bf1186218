"""The Markdown of ``tabrepro report``: pure functions from dvc's diffs, gates and verdicts to text."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tabrepro.artefacts import PackagedGate
from tabrepro.reporting.tolerances import DiffJson, Verdict, metric_direction, score_direction

RowOf = Callable[[str, str, Mapping[str, Any]], list[str]]  # (file, key, diff entry) -> the cells of its row


@dataclass(frozen=True)
class GateRecord:
    """One metrics file's gate in the workspace and at the base (``None``: no gate recorded there): evaluate's
    verdict, or package's record of it with the override and its reason (``tabrepro.artefacts.PackagedGate``)."""

    file: str
    workspace: PackagedGate | None
    base: PackagedGate | None


@dataclass(frozen=True)
class Plots:
    """Links for the plots section, relative to the report: dvc's HTML page, PNG figures, or why there are none."""

    index: str | None
    figures: tuple[str, ...]
    problem: str | None = None


def format_value(value: Any, *, signed: bool = False) -> str:
    """A table cell: floats to 4 significant digits, booleans in lowercase, absent as an em dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:+d}" if signed and value else str(value)
    if isinstance(value, float):
        return _format_float(value, signed=signed)
    text = value if isinstance(value, str) else json.dumps(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _format_float(x: float, *, signed: bool) -> str:
    sign = "+" if signed else ""
    if x == 0:
        return "0"
    if not math.isfinite(x):
        return f"{x:{sign}g}"
    if abs(x) < 1e-4 or abs(x) >= 1e6:
        return f"{x:{sign}.4g}"
    decimals = max(0, 3 - math.floor(math.log10(abs(x))))
    text = f"{x:{sign}.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_delta(old: Any, new: Any) -> str:
    """``new - old`` with its sign, ``new`` / ``removed`` when one side is absent, blank when not numeric."""
    if old is None and new is not None:
        return "new"
    if new is None and old is not None:
        return "removed"
    if _is_number(old) and _is_number(new):
        return format_value(new - old, signed=True)
    return ""


def format_change(key: str, old: Any, new: Any, *, scores: int | None = None) -> str:
    """``better`` or ``worse`` by the metric's direction (``↑``: higher is better, ``↓``: lower; ``scores``: its
    file's objective's, see ``metric_direction``), blank when the direction is unknown, a side is absent or
    nothing moved."""
    direction = metric_direction(key, scores=scores)
    if direction is None or not (_is_number(old) and _is_number(new)) or old == new:
        return ""
    word = "better" if (new - old) * direction > 0 else "worse"
    return f"{word} ({'↑' if direction > 0 else '↓'})"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def sort_keys(keys: Sequence[str]) -> list[str]:
    """Top-level keys first, then the dotted ones, each group alphabetically."""
    return sorted(keys, key=lambda key: ("." in key, key))


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _per_file(diff: DiffJson, header: Sequence[str], row_of: RowOf) -> list[str]:
    """One table per file; a file heading only when there are several files."""
    lines: list[str] = []
    for file in sorted(diff):
        keys = list(diff[file])
        if not keys:
            continue
        if len(diff) > 1:
            lines += [f"**`{file}`**", ""]
        lines += [*_table(header, [row_of(file, key, diff[file][key]) for key in sort_keys(keys)]), ""]
    return lines


def render_params(params_diff: DiffJson) -> list[str]:
    """The params section: only the params that changed."""
    lines = ["## Params", ""]

    def row(_file: str, key: str, e: Mapping[str, Any]) -> list[str]:
        return [f"`{key}`", format_value(e.get("old")), format_value(e.get("new"))]

    table = _per_file(params_diff, ["param", "base", "workspace"], row)
    return lines + (table or ["No params changed.", ""])


def render_metrics(metrics_diff: DiffJson) -> list[str]:
    """The metrics section: the metrics that changed, then the unchanged ones folded away (a PR comment stays
    readable when a metrics file holds a hundred segment metrics)."""
    lines = ["## Metrics", ""]

    scores = {file: score_direction(entries) for file, entries in metrics_diff.items()}  # tune's objective

    def row(file: str, key: str, e: Mapping[str, Any]) -> list[str]:
        old, new = e.get("old"), e.get("new")
        change = format_change(key, old, new, scores=scores[file])
        return [f"`{key}`", format_value(old), format_value(new), format_delta(old, new), change]

    if not any(metrics_diff.values()):
        return [*lines, "No metrics found.", ""]
    header = ["metric", "base", "workspace", "Δ", "change (↑/↓: higher/lower is better)"]
    changed: dict[str, dict[str, Any]] = {file: {} for file in metrics_diff}
    same: dict[str, dict[str, Any]] = {file: {} for file in metrics_diff}
    for file, entries in metrics_diff.items():
        for key, e in entries.items():
            (same if e.get("old") == e.get("new") else changed)[file][key] = e
    lines += _per_file(changed, header, row) or ["No metric changed.", ""]
    n_same = sum(len(d) for d in same.values())
    if n_same:
        lines += ["<details>", f"<summary>{n_same} unchanged metrics</summary>", ""]
        lines += [*_per_file(same, header, row), "</details>", ""]
    return lines


def _gate_word(gate: PackagedGate | None) -> str:
    if gate is None:
        return "no gate recorded"
    if gate.overridden:
        return "failed, OVERRIDDEN (packaged anyway)"
    return "passed" if gate.passed else "FAILED"


def render_gates(gates: Sequence[GateRecord]) -> list[str]:
    """The gate section: each metrics file's gate, with the base's alongside."""
    lines = ["## Gate", ""]
    recorded = [g for g in gates if g.workspace is not None or g.base is not None]
    if not recorded:
        files = ", ".join(f"`{g.file}`" for g in gates) or "none"
        return [*lines, f"No gate recorded (metrics files: {files}).", ""]
    for g in recorded:
        lines.append(f"- `{g.file}`: gate: **{_gate_word(g.workspace)}** (base: {_gate_word(g.base)})")
        if g.workspace is not None:
            lines += [f"  - {format_value(reason)}" for reason in g.workspace.reasons]
            if g.workspace.overridden:
                lines.append(f"  - overridden (package.override_gate): {format_value(g.workspace.override_reason)}")
    return [*lines, ""]


def render_verdicts(verdicts: Sequence[Verdict]) -> list[str]:
    """The tolerance section: one row per ``--fail-on``, and a line saying which broke."""
    lines = ["## Tolerances", ""]
    if not verdicts:
        return [*lines, "No tolerances given (`--fail-on KEY:TOL`).", ""]
    words = {"ok": "ok", "broken": "**BROKEN**", "new": "new (no base value)", "removed": "**REMOVED**"}
    rows = [
        [
            f"`{v.tolerance.spec}`",
            format_value(v.old),
            format_value(v.new),
            format_delta(v.old, v.new),
            format_value(v.tolerance.tol, signed=True),
            words[v.status],
        ]
        for v in verdicts
    ]
    lines += _table(["check", "base", "workspace", "Δ", "tolerance", "verdict"], rows)
    broken = [f"`{v.tolerance.spec}`" for v in verdicts if v.broken]
    summary = f"{len(broken)} of {len(verdicts)} broken: {', '.join(broken)}" if broken else "All tolerances held."
    return [*lines, "", f"**{summary}**", ""]


def render_plots(plots: Plots) -> list[str]:
    """The plots section: a link to ``dvc plots diff``'s page and the PNG figures inline."""
    lines = ["## Plots", ""]
    if plots.index is not None:
        lines += [f"[Base vs workspace plots (`dvc plots diff`)]({plots.index})", ""]
    if plots.problem is not None:
        lines += [plots.problem, ""]
    lines += [f"![{figure.rsplit('/', 1)[-1]}]({figure})" for figure in plots.figures]
    return [*lines, ""] if plots.figures else lines


def render_report(
    *,
    base_name: str,
    base_sha: str,
    params_diff: DiffJson,
    metrics_diff: DiffJson,
    gates: Sequence[GateRecord],
    verdicts: Sequence[Verdict],
    plots: Plots,
) -> str:
    """The whole report: title, base, params, metrics, gate, tolerances and plots."""
    lines = ["# Model report", "", f"Workspace compared with base `{base_name}` (`{base_sha}`).", ""]
    lines += render_params(params_diff) + render_metrics(metrics_diff) + render_gates(gates)
    lines += render_verdicts(verdicts) + render_plots(plots)
    return "\n".join(lines).rstrip() + "\n"
