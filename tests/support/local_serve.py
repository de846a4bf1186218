"""Start and stop a real `bentoml serve` on 127.0.0.1, of a serving folder or of a built bento by its tag (tests and
benchmarks use it)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

SERVICE = "tabrepro.serving.service:TabreproService"
TELEMETRY_SWITCHES = ("BENTOML_DO_NOT_TRACK", "ORT_DISABLE_TELEMETRY", "OTEL_SDK_DISABLED", "DO_NOT_TRACK")


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """``n`` distinct free local ports (all held open together while they are chosen, so none repeats: servers
    started in parallel must not share one, since BentoML binds with SO_REUSEPORT)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def start_server(
    serving_dir: str | Path | None = None,
    *,
    bentoml_home: str | Path,
    bento: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 90,
    port: int | None = None,
) -> tuple[subprocess.Popen, str]:
    """Launch the service on a free local port; return once `/livez` answers (readiness is the caller's test).

    Serves ``serving_dir`` with the service class of this checkout, or, given ``bento`` (a tag such as
    ``tabrepro:0123abcd4567`` in ``bentoml_home``), that bento with its own code and model. ``env`` adds variables
    (``TABREPRO_ROLLOUT_MODE``, ``TABREPRO_PREDICTION_LOG``, ...); the telemetry switches of the caller's
    environment are removed, so every test checks that the service switches them off itself.
    """
    if (serving_dir is None) == (bento is None):
        raise ValueError("start_server: give either a serving folder or a bento tag")
    port = port or free_port()
    # started as a user would: no telemetry switch in its environment (the service sets them itself: serving.quiet)
    inherited = {k: v for k, v in os.environ.items() if k not in TELEMETRY_SWITCHES}
    if bento is not None:
        inherited.pop("TABREPRO_SERVING_DIR", None)  # the bento's own setting (its packaged models/serving) applies
    process_env = {
        **inherited,
        "BENTOML_HOME": str(bentoml_home),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        **({"TABREPRO_SERVING_DIR": str(serving_dir)} if serving_dir is not None else {}),
        **(env or {}),
    }
    # The log goes to a file, not a pipe: a pipe nobody reads fills up under load and blocks the server.
    log = tempfile.NamedTemporaryFile(prefix="bentoml-serve-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "bentoml", "serve", bento or SERVICE, "--host", "127.0.0.1", "--port", str(port)],
        env=process_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: a kill reaches the arbiter and every worker
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
    _kill_group(proc)
    raise RuntimeError(f"bentoml serve did not start in {timeout:.0f} s:\n{_read_log(proc)[-3000:]}")


def stop_server(proc: subprocess.Popen) -> str:
    """Stop the server and return what it logged."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
    return _read_log(proc)


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the server's process group (``bentoml serve``, its arbiter and workers), then reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _read_log(proc: subprocess.Popen) -> str:
    path = Path(proc.log_path)  # type: ignore[attr-defined]
    text = path.read_text(errors="replace") if path.exists() else ""
    if proc.poll() is not None:
        path.unlink(missing_ok=True)
    return text
