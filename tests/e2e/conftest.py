"""Helpers for end-to-end tests: a copy of the repository as git would hold it, and real dvc commands."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tabrepro.config.compose import write_params

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 600


def copy_repository(dest: Path) -> Path:
    """Copy what a commit of the working tree would hold (tracked + untracked, not ignored), then commit it."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for rel in filter(None, listed):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    shrink_budget(dest)
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-qm", "copy of the working tree")
    return dest


def shrink_budget(repo: Path, n_trials: int = 5) -> None:
    """A small config for tests: fewer tuning trials, composed into params.yaml as `make params` would."""
    tune_conf = repo / "conf" / "tune" / "default.yaml"
    tune = yaml.safe_load(tune_conf.read_text())
    tune_conf.write_text(yaml.safe_dump({**tune, "n_trials": n_trials}, sort_keys=False))
    write_params(repo / "params.yaml", repo / "conf")


def env() -> dict[str, str]:
    """The test's interpreter first on PATH, so dvc.yaml's `python -m ...` runs in this environment."""
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "DVC_NO_ANALYTICS": "1",
        "BENTOML_DO_NOT_TRACK": "True",
        "GIT_AUTHOR_NAME": "tabrepro tests",
        "GIT_AUTHOR_EMAIL": "tests@tabrepro.invalid",
        "GIT_COMMITTER_NAME": "tabrepro tests",
        "GIT_COMMITTER_EMAIL": "tests@tabrepro.invalid",
    }


def git(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, env=env(), capture_output=True, text=True, check=True)


def dvc(cwd: Path, *args: str, check: bool = True, timeout: int = TIMEOUT_S) -> subprocess.CompletedProcess:
    """Run the real dvc CLI; on an unexpected failure show its output."""
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        pytest.fail(f"dvc {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository after one successful `dvc repro` from nothing, committed as a user would."""
    repo = copy_repository(tmp_path_factory.mktemp("repo"))
    dvc(repo, "repro")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "dvc repro")
    return repo
