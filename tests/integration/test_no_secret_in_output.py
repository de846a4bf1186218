"""No password in any output: every failing run that is handed a database URL with a password, or a params section
that holds one, is run as a user would (``dvc repro``, the stage's ``main``, ``tabrepro tune-worker``) and every
captured line of its stdout and stderr is searched for any piece of the planted password."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tabrepro.config.params import load_params

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "p@s3cr:et/PW%40#x"  # holds @ : / % #
PIECES = ("s3cr", "et/PW", "PW%40", "%40#x")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _storages() -> dict[str, str]:
    port = _closed_port()
    return {
        "password in the URL": f"postgresql://optuna:{PASSWORD}@127.0.0.1:{port}/optuna",
        "password in the query": f"postgresql://optuna@127.0.0.1:{port}/optuna?password={PASSWORD}",
        "sslpassword in the query": f"postgresql://optuna@127.0.0.1:{port}/optuna?sslpassword={PASSWORD}",
    }


def _params(storage: str, *, section_error: bool) -> dict:
    params = load_params(REPO / "params.yaml")
    tune = {k: v for k, v in params["tune"].items() if k != "storage"}
    tune = {"storage": storage, **tune, "n_trials": 2}  # first: the section's repr starts with it
    if section_error:
        tune["grace_period"] = 5  # not longer than heartbeat_interval: a whole-section error
    return {**params, "tune": tune}


def _assert_no_secret(done: subprocess.CompletedProcess, what: str) -> str:
    output = done.stdout + done.stderr
    assert done.returncode == 2, f"{what}:\n{output}"
    leaked = [piece for piece in PIECES if piece in output]
    assert not leaked, f"{what} printed {leaked}:\n{output}"
    assert "Traceback" not in output, output
    return output


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize(
    ("kind", "section_error"),
    [(kind, False) for kind in _storages()] + [("password in the URL", True)],
    ids=[*_storages(), "section error"],
)
def test_tune_stage_and_worker_never_print_the_password(packaged, tmp_path, kind, section_error):
    params = _params(_storages()[kind], section_error=section_error)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for args in (["-m", "tabrepro.stages.tune", "--params"], ["-m", "tabrepro.cli", "tune-worker", "--params"]):
        # the packaged sample's features: the run gets as far as opening the database
        done = _run([*args, str(tmp_path / "params.yaml")], cwd=packaged)
        output = _assert_no_secret(done, " ".join(args))
        assert "postgresql://optuna" in output and "***" in output, output  # the URL is named, masked


def test_dvc_repro_never_prints_the_password(tmp_path):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t"}
    env |= {"GIT_COMMITTER_EMAIL": "t@x"}
    (tmp_path / "params.yaml").write_text(
        yaml.safe_dump(_params(_storages()["password in the URL"], section_error=True))
    )
    (tmp_path / "dvc.yaml").write_text(
        f"stages:\n  tune:\n    cmd: {sys.executable} -m tabrepro.stages.tune\n    params: [tune, seed]\n"
        "    outs: [study]\n"
    )
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True, env=env)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=tmp_path, check=True, env=env)
    done = subprocess.run(
        [sys.executable, "-m", "dvc", "repro"], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0 and "grace_period" in output, output
    assert not [piece for piece in PIECES if piece in output], output
