"""The README blocks listed in test_readme.RUN, run as written with bash from the root of a copy of the reproduced
sample repository (a fresh clone's point of view: no BentoML store, no remote, no server). Only fixed ports are
swapped for free ones; a block that starts a server is run in its own process group, stopped at the end."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import REPO
from tests.e2e.test_readme import RUN, blocks, clean_env
from tests.support.local_serve import free_port, free_ports

pytestmark = pytest.mark.e2e


def _text(block_id: str, replace: dict[str, str]) -> str:
    assert block_id in RUN, f"{block_id} is not in test_readme.RUN"
    text = blocks()[block_id].text
    for old, new in replace.items():
        assert old in text, f"{block_id}: {old!r} not in the block"
        text = text.replace(old, new)
    return text


def _bash(text: str, cwd: Path, *, env: dict[str, str], runas: str | None = None) -> subprocess.Popen:
    command = ["bash", "-eo", "pipefail", "-c", text]
    if runas:  # runuser sets HOME to the user's own: keep the one given
        command = ["runuser", "-u", runas, "--", "env", f"HOME={env['HOME']}", *command]
    return subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )


def _stop(proc: subprocess.Popen) -> None:
    """Stop what the block left running (a `&` job, a server): its whole process group."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=15)
            return


@contextlib.contextmanager
def running(block_id: str, cwd: Path, *, replace: dict[str, str] | None = None, **kw) -> Iterator[subprocess.Popen]:
    proc = _bash(_text(block_id, replace or {}), cwd, env=kw.pop("env", clean_env()), **kw)
    try:
        yield proc
    finally:
        _stop(proc)


def run(block_id: str, cwd: Path, *, replace: dict[str, str] | None = None, timeout: int = 300, **kw) -> str:
    """Run the block to its end; its output; a non-zero exit fails the test with that output."""
    with running(block_id, cwd, replace=replace, **kw) as proc:
        output, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"block {block_id} exited {proc.returncode}:\n{output}"
    return output


def test_env_sh_then_dvc_finds_the_pipeline_up_to_date(workspace: Path):
    output = run("env", workspace)
    assert "Data and pipelines are up to date." in output


def test_a_bento_imported_served_and_asked_as_written(workspace: Path):
    tag = json.loads((workspace / "reports" / "package.json").read_text())["bento"]["tag"]
    imported = run("bento-import", workspace)
    assert f'Bento(tag="{tag}") imported.' in imported and tag.split(":")[1] in imported.split("imported.")[1]
    port = free_port()
    with running("bento-serve", workspace, replace={"--port 3000": f"--port {port}"}) as server:
        _wait_ready(server, f"http://127.0.0.1:{port}")
        answer = json.loads(run("predict", workspace, replace={"localhost:3000": f"127.0.0.1:{port}"}))
    shown = _shown_answer()
    assert set(answer) == set(shown) and set(answer["predictions"][0]) == set(shown["predictions"][0])
    keep = ("id", "index", "role")
    assert {k: answer["predictions"][0][k] for k in keep} == {k: shown["predictions"][0][k] for k in keep}
    assert answer["model_sha256"].startswith(tag.split(":")[1])


def _wait_ready(server: subprocess.Popen, url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, f"the server exited:\n{server.stdout.read()}"
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        time.sleep(0.5)
    raise AssertionError(f"{url}/readyz not 200 after {timeout:.0f} s")


def _shown_answer() -> dict:
    """The answer the README prints under the curl command (its `# ` lines), as JSON."""
    lines = blocks()["predict"].text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# {"))
    return json.loads(" ".join(line[2:] for line in lines[start:]))


def test_a_local_s3_endpoint_and_a_push_as_written(workspace: Path):
    port = free_port()
    output = run("s3-local", workspace, replace={":5000": f":{port}", "-p 5000": f"-p {port}"})
    assert "Cache and remote 'storage' are in sync." in output
    assert "files pushed" in output
    run("remote-config", workspace)
    run("minio", workspace)
    config = (workspace / ".dvc" / "config.local").read_text()
    assert "url = s3://my-team-bucket/tabrepro" in config and "endpointurl = https://minio.example.org:9000" in config


def test_postgresql_started_as_written(tmp_path: Path):
    """As a normal user (as root: the block run by `runuser -u postgres`, as the README says), on a free port."""
    runas = "postgres" if os.geteuid() == 0 else None
    home = Path(tempfile.mkdtemp(prefix="readme-pg-"))  # under /tmp: pytest's temp root is private to root
    if runas:
        shutil.chown(home, runas)
    port = str(free_ports(1)[0])
    env = {**clean_env(), "HOME": str(home)}
    try:
        output = run("pg-start", home, replace={"-p 5432": f"-p {port}"}, env=env, runas=runas)
        ready = subprocess.run(
            ["/usr/lib/postgresql/15/bin/pg_isready", "-h", "127.0.0.1", "-p", port, "-d", "optuna"],
            capture_output=True,
            text=True,
        )
        assert ready.returncode == 0, output + ready.stdout
    finally:
        stop = f"/usr/lib/postgresql/15/bin/pg_ctl -D {home}/tabrepro-pg -m fast -w stop"
        command = ["runuser", "-u", runas, "--", *stop.split()] if runas else stop.split()
        subprocess.run(command, capture_output=True, check=False, timeout=60)
        shutil.rmtree(home, ignore_errors=True)


def test_the_answer_shown_is_the_committed_models():
    """Model version, sha256 and threshold as the committed reports record them (a relock that changes the model
    makes the README's answer stale: update it from `make serve` and the curl above)."""
    shown, package = _shown_answer(), json.loads((REPO / "reports" / "package.json").read_text())
    threshold = json.loads((REPO / "reports" / "metrics.json").read_text())["threshold"]
    assert shown["model_version"] == package["model"]["version"] == shown["predictions"][0]["model_version"]
    assert package["model"]["sha256"].startswith(shown["model_sha256"].rstrip("…"))
    assert shown["threshold"] == threshold
    assert shown["predictions"][0]["label"] == int(shown["predictions"][0]["probability"] >= threshold)
