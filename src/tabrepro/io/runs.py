"""Run records: what a stage measured about *when* and *where* it ran, kept out of every tracked or hashed output.

Timings, latencies, the host, the clock and the git revision differ from run to run by nature; written into a
DVC output they would make ``dvc.lock`` move on every ``dvc repro -f`` and hide real changes in that noise. So
they go to ``<paths.runs>/<stage>.json`` (``reports/runs/`` by default, git-ignored, no DVC output): one file per
stage, replaced by each run of that stage, so it always describes the latest run. Files a stage keeps only for
the record (the tune stage's Optuna journal) sit next to it, in ``<paths.runs>/<stage>/``.
"""

from __future__ import annotations

import logging
import os
import platform
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tabrepro.io.staging import write_json

log = logging.getLogger(__name__)


def git_revision(cwd: str | Path | None = None) -> str:
    """The commit checked out (``HEAD``), ``unknown`` outside git. (Not whether the tree is dirty: during
    ``dvc repro`` the stages themselves modify tracked files.)"""
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=False)
    return head.stdout.strip() if head.returncode == 0 else "unknown"


def run_context(*, started: datetime) -> dict[str, Any]:
    """The fields every run record carries: when, where, on what code and interpreter."""
    finished = datetime.now(UTC)
    return {
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": finished.isoformat(timespec="seconds"),
        "wall_seconds": round((finished - started).total_seconds(), 3),
        "host": socket.gethostname(),
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "pid": os.getpid(),
        "git_revision": git_revision(),
    }


def write_run_record(folder: str | Path, stage: str, fields: dict[str, Any], *, started: datetime) -> Path:
    """Write ``<folder>/<stage>.json``: the common context and ``fields`` (the stage's own measurements).

    A record that cannot be written is logged, never fatal: the stage's outputs are already in place by then."""
    path = Path(folder) / f"{stage}.json"
    try:
        write_json(path, {"stage": stage, **run_context(started=started), **fields})
    except OSError as exc:
        log.warning("run record %s not written: %s", path, exc)
    return path


def record_folder(folder: str | Path, stage: str) -> Path:
    """``<folder>/<stage>/``, created: where a stage keeps files only for the record (e.g. a study journal)."""
    path = Path(folder) / stage
    path.mkdir(parents=True, exist_ok=True)
    return path
