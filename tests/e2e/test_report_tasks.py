"""`tabrepro report` between a regression experiment and its baseline, through the real `dvc metrics diff`: each
metric's change is called better or worse by its direction (lower RMSE is better), and `--fail-on` knows it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import dvc, env, git

pytestmark = pytest.mark.e2e

GATE = {"verdict": "pass", "reasons": []}
BASE = {
    "task": "regression",
    "rmse": 33.9,
    "rmse_ci": {"lo": 32.0, "hi": 35.8},
    "mae": 23.1,
    "r2": 0.31,
    "vs_baselines": {"ridge": {"rmse_diff": -0.4}},
    "gate": GATE,
}
# the experiment: RMSE rises (worse), MAE falls (better), R² falls (worse)
EXPERIMENT = BASE | {"rmse": 35.1, "rmse_ci": {"lo": 33.2, "hi": 37.0}, "mae": 22.5, "r2": 0.27}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`main` holds the baseline's metrics.json, the checked-out `experiment` the experiment's, both committed."""
    repo = tmp_path_factory.mktemp("regression")
    git(repo, "init", "-q", "-b", "main")
    dvc(repo, "init", "-q")
    (repo / "dvc.yaml").write_text("metrics:\n  - metrics.json\n")
    (repo / ".gitignore").write_text("/dvc_plots/\n")
    (repo / "metrics.json").write_text(json.dumps(BASE))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "baseline")
    git(repo, "checkout", "-q", "-b", "experiment")
    (repo / "metrics.json").write_text(json.dumps(EXPERIMENT))
    git(repo, "commit", "-qam", "experiment")
    return repo


def report(repo: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "tabrepro.cli", "report", "--base", "main", *args]
    return subprocess.run(command, cwd=repo, env=env(), capture_output=True, text=True, timeout=120)


def test_each_change_reads_by_its_metrics_direction(project: Path) -> None:
    proc = report(project)
    assert proc.returncode == 0, proc.stderr
    assert "| `rmse` | 33.9 | 35.1 | +1.2 | worse (↓) |" in proc.stdout
    assert "| `mae` | 23.1 | 22.5 | -0.6 | better (↓) |" in proc.stdout
    assert "| `r2` | 0.31 | 0.27 | -0.04 | worse (↑) |" in proc.stdout
    assert "| `rmse_ci.hi` | 35.8 | 37 | +1.2 | worse (↓) |" in proc.stdout
    assert "gate: **passed** (base: passed)" in proc.stdout


def test_an_unsigned_tolerance_takes_the_direction(project: Path) -> None:
    proc = report(project, "--fail-on", "rmse:0.5,r2:0.05")
    assert proc.returncode == 1, proc.stderr
    assert "| `rmse:0.5` | 33.9 | 35.1 | +1.2 | +0.5 | **BROKEN** |" in proc.stdout
    assert "| `r2:0.05` | 0.31 | 0.27 | -0.04 | -0.05 | ok |" in proc.stdout


def test_a_sign_against_the_direction_is_bad_input(project: Path) -> None:
    proc = report(project, "--fail-on", "rmse:-0.5")
    assert proc.returncode == 2
    assert "lower rmse is better, so the sign of TOL is wrong; write rmse:+0.5" in proc.stderr
