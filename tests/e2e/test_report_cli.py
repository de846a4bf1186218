"""`tabrepro report` against a tiny real DVC project: a branch that changes one param and lowers roc_auc by 0.02."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import dvc, env, git

pytestmark = pytest.mark.e2e

TIMEOUT_S = 120

# roc_auc falls by 0.02 and brier rises by 0.01 per unit of alpha; the gate fails once roc_auc < 0.89.
TRAIN_PY = """\
import json
from pathlib import Path

import yaml

alpha = yaml.safe_load(Path("params.yaml").read_text())["model"]["alpha"]
roc_auc = round(0.90 - 0.02 * (alpha - 1), 6)
held = roc_auc >= 0.89
gate = {"verdict": "pass" if held else "fail", "reasons": [] if held else [f"roc_auc {roc_auc} < 0.89"]}
metrics = {"roc_auc": roc_auc, "brier": round(0.10 + 0.01 * (alpha - 1), 6), "segments": {"a": {"gap": 0.05}}}
Path("metrics.json").write_text(json.dumps({**metrics, "gate": gate}))
Path("plots").mkdir(exist_ok=True)
Path("plots/curve.json").write_text(json.dumps([{"x": x, "y": x * alpha} for x in range(3)]))
Path("reports/figures").mkdir(parents=True, exist_ok=True)
Path("reports/figures/curve.png").write_bytes(b"\\x89PNG\\r\\n\\x1a\\n")
"""

DVC_YAML = """\
stages:
  train:
    cmd: python train.py
    deps: [train.py]
    params: [model.alpha]
    metrics:
      - metrics.json:
          cache: false
    plots:
      - plots/curve.json:
          cache: false
          x: x
          y: y
    outs:
      - reports/figures:
          cache: false
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`main`: alpha 1.0, roc_auc 0.90; checked out `change`: alpha 2.0, roc_auc 0.88, both reproduced and committed."""
    repo = tmp_path_factory.mktemp("toy")
    git(repo, "init", "-q", "-b", "main")
    dvc(repo, "init", "-q")
    (repo / "train.py").write_text(TRAIN_PY)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    (repo / "params.yaml").write_text("model:\n  alpha: 1.0\n")
    (repo / ".gitignore").write_text("/dvc_plots/\n/report.md\n")
    dvc(repo, "repro", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "alpha 1.0")
    git(repo, "checkout", "-q", "-b", "change")
    (repo / "params.yaml").write_text("model:\n  alpha: 2.0\n")
    dvc(repo, "repro", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "alpha 2.0")
    return repo


def report(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tabrepro.cli", "report", *args],
        cwd=repo,
        env=env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


def test_report_shows_the_param_metric_gate_and_plots(project: Path):
    proc = report(project, "--base", "main", "--output", "out/report.md")
    assert proc.returncode == 0, proc.stderr
    written = (project / "out" / "report.md").read_text()
    assert written == proc.stdout
    sha = git(project, "rev-parse", "--short", "main").stdout.strip()
    assert f"`main` (`{sha}`)" in written
    assert "| `model.alpha` | 1 | 2 |" in written
    assert "| `roc_auc` | 0.9 | 0.88 | -0.02 |" in written
    assert "| `brier` | 0.1 | 0.11 | +0.01 |" in written
    assert "| `segments.a.gap` | 0.05 | 0.05 | 0 |" in written
    assert "gate: **FAILED** (base: passed)" in written and "roc_auc 0.88 < 0.89" in written
    # links are relative to the report file, as `cml comment create --publish` resolves them
    assert "(../dvc_plots/index.html)" in written and (project / "dvc_plots" / "index.html").is_file()
    assert "![curve.png](../reports/figures/curve.png)" in written


def test_a_drop_past_the_tolerance_exits_1_and_names_the_metric(project: Path):
    proc = report(project, "--base", "main", "--fail-on", "roc_auc:-0.005", "--output", "report.md")
    assert proc.returncode == 1, proc.stderr
    assert "| `roc_auc:-0.005` | 0.9 | 0.88 | -0.02 | -0.005 | **BROKEN** |" in proc.stdout
    assert "--fail-on roc_auc:-0.005 broken" in proc.stderr
    assert "**BROKEN**" in (project / "report.md").read_text()  # written even when failing


def test_changes_within_tolerances_of_either_sign_exit_0(project: Path):
    proc = report(project, "--base", "main", "--fail-on", "roc_auc:-0.05", "--fail-on", "brier:+0.02")
    assert proc.returncode == 0, proc.stderr
    assert "All tolerances held." in proc.stdout


def test_a_rise_past_a_positive_tolerance_exits_1(project: Path):
    proc = report(project, "--base", "main", "--fail-on", "roc_auc:-0.05,metrics.json:brier:+0.005")
    assert proc.returncode == 1, proc.stderr
    assert "1 of 2 broken: `metrics.json:brier:+0.005`" in proc.stdout


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--base", "does-not-exist"], "'does-not-exist': no such git revision"),
        (["--base", "main", "--fail-on", "roc_aux:-0.005"], "no metric 'roc_aux'"),
        (["--base", "main", "--fail-on", "roc_auc:0"], "'roc_auc:0'"),
    ],
)
def test_bad_input_exits_2_naming_it(project: Path, args: list[str], named: str):
    proc = report(project, *args)
    assert proc.returncode == 2, proc.stderr
    assert named in proc.stderr and proc.stdout == ""


def test_outside_a_dvc_repository_exits_2(tmp_path: Path):
    proc = report(tmp_path, "--base", "main")
    assert proc.returncode == 2
    assert "not inside a git work tree" in proc.stderr
