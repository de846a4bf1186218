"""Start and stop a real `bentoml serve` of a serving folder on 127.0.0.1 (tests and benchmarks use it)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

SERVICE = "tabrepro.serving.service:TabreproService"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    serving_dir: str | Path, *, bentoml_home: str | Path, timeout: float = 90
) -> tuple[subprocess.Popen, str]:
    """Launch the service on a free local port; return once `/livez` answers (readiness is the caller's test)."""
    port = free_port()
    env = {
        **os.environ,
        "TABREPRO_SERVING_DIR": str(serving_dir),
        "BENTOML_HOME": str(bentoml_home),
        "BENTOML_DO_NOT_TRACK": "True",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    # The log goes to a file, not a pipe: a pipe nobody reads fills up under load and blocks the server.
    log = tempfile.NamedTemporaryFile(prefix="bentoml-serve-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    proc.log_path = log.name  # type: ignore[attr-defined]
    log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"bentoml serve exited:\n{_read_log(proc)}")
        try:
            if httpx.get(f"{url}/livez", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"bentoml serve did not start in {timeout:.0f} s")


def stop_server(proc: subprocess.Popen) -> str:
    """Stop the server and return what it logged."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return _read_log(proc)


def _read_log(proc: subprocess.Popen) -> str:
    path = Path(proc.log_path)  # type: ignore[attr-defined]
    text = path.read_text(errors="replace") if path.exists() else ""
    if proc.poll() is not None:
        path.unlink(missing_ok=True)
    return text
