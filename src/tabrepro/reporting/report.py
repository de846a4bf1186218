"""``tabrepro report``: what a change did to the model, as Markdown for a pull request.

Compares a git revision (the base) with the workspace through the real ``dvc params diff``, ``dvc metrics diff``
and ``dvc plots diff``, reads the ``gate`` that metrics files record, and judges ``--fail-on`` tolerances. The pure
parts live in ``tabrepro.reporting.tolerances`` and ``tabrepro.reporting.markdown``; this module runs git and dvc.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from tabrepro.artefacts import PackagedGate, validate_artefact
from tabrepro.config.params import load_params
from tabrepro.io.staging import check_output_path
from tabrepro.reporting.markdown import GateRecord, Plots, render_report
from tabrepro.reporting.tolerances import ReportError, Verdict, check_tolerances, parse_tolerances

log = logging.getLogger(__name__)

DEFAULT_FIGURES_DIR = "reports/figures"  # used when params.yaml has no paths.figures


@dataclass(frozen=True)
class Report:
    """The Markdown and the tolerance verdicts behind it."""

    markdown: str
    verdicts: tuple[Verdict, ...]

    @property
    def broken(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.broken]


def make_report(*, base: str, fail_on: Sequence[str], plots_dir: Path, output: Path | None) -> Report:
    """Compare ``base`` with the workspace of the DVC repository in the current folder; write ``output`` if given."""
    if output is not None:  # before any work: a folder or an unwritable place named by --output is exit 2
        check_output_path(output, option="--output")
    check_output_path(plots_dir, option="--plots-dir", kind="folder")
    tolerances = parse_tolerances(fail_on)
    check_repository()
    base_sha = resolve_base(base)
    log.info("comparing the workspace with %s (%s)", base, base_sha)
    params_diff = run_dvc_json("params", "diff", base, "--json")
    metrics_diff = run_dvc_json("metrics", "diff", base, "--all", "--json")
    verdicts = check_tolerances(tolerances, metrics_diff)
    gates = [read_gate_record(file, base) for file in sorted(metrics_diff)]
    link_root = output.parent if output is not None else Path()
    plots = draw_plots(base, plots_dir=plots_dir, figures_dir=read_figures_dir(), link_root=link_root)
    markdown = render_report(
        base_name=base,
        base_sha=base_sha,
        params_diff=params_diff,
        metrics_diff=metrics_diff,
        gates=gates,
        verdicts=verdicts,
        plots=plots,
    )
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(markdown, encoding="utf-8")
    return Report(markdown=markdown, verdicts=tuple(verdicts))


def _run(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    try:
        return subprocess.run(list(args), capture_output=True, text=True, env=env, check=False)
    except FileNotFoundError as exc:
        raise ReportError(f"cannot run {args[0]!r}: {exc.strerror}") from None


def check_repository() -> None:
    """The report runs from the root of a DVC repository inside a git work tree."""
    if _run(["git", "rev-parse", "--is-inside-work-tree"]).returncode != 0:
        raise ReportError(f"{Path.cwd()} is not inside a git work tree: run `tabrepro report` in a DVC repository")
    if not Path(".dvc").is_dir():
        raise ReportError(f"no .dvc/ folder in {Path.cwd()}: run `tabrepro report` from a DVC repository's root")


def resolve_base(rev: str) -> str:
    """The short sha of the commit ``rev`` names."""
    proc = _run(["git", "rev-parse", "--verify", "--quiet", "--short", f"{rev}^{{commit}}"])
    if proc.returncode != 0 or not proc.stdout.strip():
        raise ReportError(f"--base {rev!r}: no such git revision (try a branch, tag or commit)")
    return proc.stdout.strip()


def _dvc(*args: str) -> subprocess.CompletedProcess[str]:
    """``dvc ARGS`` from this interpreter's environment."""
    return _run([sys.executable, "-m", "dvc", *args])


def run_dvc_json(*args: str) -> dict[str, Any]:
    """Run ``dvc ARGS`` and parse what it prints as JSON."""
    proc = _dvc(*args)
    if proc.returncode != 0:
        raise ReportError(f"`dvc {' '.join(args)}` exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    try:
        parsed = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise ReportError(f"`dvc {' '.join(args)}` printed no JSON ({exc}): {proc.stdout[:200]!r}") from None
    if not isinstance(parsed, dict):
        raise ReportError(f"`dvc {' '.join(args)}` printed {type(parsed).__name__}, not a JSON object")
    return parsed


def parse_metrics_text(text: str, *, source: str) -> Mapping[str, Any]:
    """A metrics file's content by its suffix, as DVC reads them: JSON, TOML or YAML."""
    try:
        if source.endswith(".json"):
            data = json.loads(text)
        elif source.endswith(".toml"):
            data = tomllib.loads(text)
        else:
            data = yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ReportError(f"{source}: cannot parse metrics file: {exc}") from None
    return data if isinstance(data, Mapping) else {}


def parse_gate(metrics: Mapping[str, Any], *, source: str) -> PackagedGate | None:
    """The ``gate`` of a metrics file: evaluate's verdict, or package's record of it (with the override and its
    reason); ``None`` if the file has none. A gate in another layout is a ReportError naming the key."""
    if "gate" not in metrics:
        return None
    record = validate_artefact({"gate": metrics["gate"]}, _GateOf, source=source, error=ReportError)
    return record.gate


class _GateOf(BaseModel):
    """Only a metrics file's ``gate`` (its other keys are dvc's to diff), so errors name ``gate.<key>``."""

    model_config = ConfigDict(frozen=True)

    gate: PackagedGate


def read_gate_record(file: str, base: str) -> GateRecord:
    """A metrics file's gate in the workspace and, from git, at ``base``."""
    path = Path(file)
    shown = _run(["git", "show", f"{base}:./{path.as_posix()}"])  # ./ : relative to this folder, not git's root
    at_base = parse_metrics_text(shown.stdout, source=f"{base}:{file}") if shown.returncode == 0 else {}
    workspace = parse_metrics_text(read_metrics_file(path), source=file) if path.exists() or at_base else {}
    return GateRecord(
        file=file, workspace=parse_gate(workspace, source=file), base=parse_gate(at_base, source=f"{base}:{file}")
    )


def read_metrics_file(path: Path) -> str:
    """A workspace metrics file's text; a ``ReportError`` (bad input, not a verdict) when it is missing (the
    workspace is not reproduced), unreadable or not UTF-8."""
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ReportError(f"{path}: missing from the workspace; run `dvc repro` (or `dvc pull`) first") from None
    except OSError as exc:
        raise ReportError(f"{path}: cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ReportError(f"{path}: not valid UTF-8 at byte offset {exc.start}; it is not a metrics file") from None


def read_figures_dir(params_file: Path = Path("params.yaml")) -> Path:
    """Where the PNG figures are: ``paths.figures`` of params.yaml, else ``reports/figures``."""
    paths = (load_params(params_file) if params_file.is_file() else {}).get("paths") or {}
    return Path(paths.get("figures", DEFAULT_FIGURES_DIR))


def draw_plots(base: str, *, plots_dir: Path, figures_dir: Path, link_root: Path) -> Plots:
    """Run ``dvc plots diff`` into ``plots_dir``; links are relative to ``link_root`` (where the report goes),
    which is how ``cml comment create --publish`` finds the files to upload."""
    figures = tuple(_link(png, link_root) for png in sorted(figures_dir.rglob("*.png")))
    index = plots_dir / "index.html"
    index.unlink(missing_ok=True)  # a page left from an earlier run must not pass for this one
    proc = _dvc("plots", "diff", base, "-o", str(plots_dir))
    if proc.returncode != 0:
        detail = proc.stderr.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        return Plots(index=None, figures=figures, problem=f"`dvc plots diff` failed: {detail[0]}")
    if not index.is_file():
        return Plots(index=None, figures=figures, problem="`dvc plots diff` drew no plots (none defined?).")
    return Plots(index=_link(index, link_root), figures=figures)


def _link(path: Path, root: Path) -> str:
    return Path(os.path.relpath(path.resolve(), root.resolve())).as_posix()
