"""Nothing phones home: the service (a real `bentoml serve`, answering over HTTP), started the two ways a BentoML
user starts it (``bentoml serve tabrepro.serving.service:TabreproService`` and ``bentoml serve <bento tag>`` from
the store) with every telemetry variable removed from its environment, and `tabrepro score`, run in a network
namespace with no route out (``unshare -n``, loopback only), under ``strace -f``, which records every
connect/sendto/sendmsg of every process; any name lookup (port 53, to any address) or any connection that is not
loopback fails the test. Before ``serving.quiet``, both ways looked up BentoML's tracking host at start and at
shutdown (BentoML's CLI had read its switch before the service module set it). The recorder is shown to catch a
lookup planted in the service's worker processes (a ``sitecustomize`` on their path), so the tests can fail.

ONNX Runtime 1.31's own telemetry (``mobile.events.data.microsoft.com``, stopped by ``ORT_DISABLE_TELEMETRY=1``)
was not seen here within the run, with or without the variable; the service is run without it in the environment,
so the service's own default is what is tested.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.skipif(
    shutil.which("strace") is None or shutil.which("unshare") is None or os.geteuid() != 0,
    reason="needs strace, and unshare -n as root (CI runs as root in its container)",
)

DRIVER = """
import json, sys, time, httpx
sys.path.insert(0, {repo!r})
from tests.support.local_serve import start_server, stop_server
target, home, record, env = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
if target.startswith("/"):
    proc, url = start_server(target, bentoml_home=home, env=env)
else:  # a bento tag in the store at ``home``
    proc, url = start_server(bento=target, bentoml_home=home, env=env)
try:
    assert httpx.get(url + "/readyz", timeout=10).status_code == 200
    answer = httpx.post(url + "/predict", json={{"records": [record]}}, timeout=30)
    assert answer.status_code == 200, answer.text
    httpx.get(url + "/metrics", timeout=10)
    time.sleep(4)  # periodic telemetry gets a chance to fire
finally:
    stop_server(proc)
print("served", answer.json()["predictions"][0]["probability"])
"""
# a lookup in every worker of the service, at its start: what the recorder must catch
PLANTED = """
import socket, sys
if "_bentoml_impl.worker" in " ".join(sys.orig_argv):
    try:
        socket.getaddrinfo("planted.tabrepro.invalid", 443)
    except OSError:
        pass
"""
TELEMETRY = ("BENTOML_DO_NOT_TRACK", "ORT_DISABLE_TELEMETRY", "OTEL_SDK_DISABLED", "DO_NOT_TRACK")

_CALL = re.compile(r"^\d+\s+(connect|sendto|sendmsg)\((.*)$")
_INET = re.compile(r'sin6?_port=htons\((\d+)\).*?(?:sin_addr=inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)")')


def outbound_calls(trace: str) -> list[str]:
    """The traced calls that left loopback or looked a name up (any packet to port 53): empty when none did."""
    found = []
    for line in trace.splitlines():
        match = _CALL.match(line)
        if match is None or "AF_INET" not in match.group(2):
            continue  # AF_UNIX / AF_NETLINK, or a send on an already connected socket (its connect is checked)
        address = _INET.search(match.group(2))
        if address is None:
            found.append(line)
            continue
        port, host = int(address.group(1)), address.group(2) or address.group(3)
        loopback = host.startswith("127.") or host in ("::1", "::ffff:127.0.0.1")
        if port == 53 or not loopback:
            found.append(line)
    return found


def _record(command: list[str], trace: Path, *, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    script = 'ip link set lo up && exec strace -f -qq -s 128 -e trace=connect,sendto,sendmsg -o "$0" "$@"'
    return subprocess.run(
        ["unshare", "-n", "sh", "-c", script, str(trace), *command],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def _first_record(packaged: Path) -> dict[str, str]:
    raw = pd.read_csv(packaged / "raw" / "telco.csv", dtype="str", keep_default_na=False)
    return raw.drop(columns="Churn").iloc[0].to_dict()


def _serve_traced(
    target: str, home: Path, packaged: Path, tmp_path: Path, name: str, *, extra: dict[str, str] | None = None
) -> str:
    """The strace of a driver that starts the service (a serving folder, or a bento tag in ``home``), with no
    telemetry variable in its environment, asks it for a prediction and stops it."""
    (tmp_path / "driver.py").write_text(DRIVER.format(repo=str(REPO)))
    env = {k: v for k, v in os.environ.items() if k not in TELEMETRY} | (extra or {})
    trace = tmp_path / f"{name}.strace"
    args = [target, str(home), json.dumps(_first_record(packaged)), json.dumps({})]
    done = _record([sys.executable, "driver.py", *args], trace, env=env, cwd=tmp_path)
    assert done.returncode == 0 and "served" in done.stdout, done.stdout[-2000:] + done.stderr[-3000:]
    return trace.read_text()


@pytest.fixture(scope="module")
def bento(packaged: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A bento of the packaged model in its own store: (tag, BENTOML_HOME); built as the package stage builds it."""
    work = tmp_path_factory.mktemp("bento")
    (work / "bentos").mkdir()
    shutil.copy(REPO / "bentos" / "bentofile.yaml", work / "bentos" / "bentofile.yaml")
    build = (
        "import sys; from pathlib import Path; from tabrepro.packaging.store import build_bento; "
        "print(build_bento(Path(sys.argv[1]), Path('bentos/t.bento'), template=Path('bentos/bentofile.yaml'), "
        "labels={}, version='quiet0test0', receipt=Path('bentos/published.json')))"
    )
    env = os.environ | {"BENTOML_HOME": str(work / "home")}
    serving = str(packaged / "models" / "serving")
    done = subprocess.run([sys.executable, "-c", build, serving], cwd=work, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1], work / "home"


def test_the_service_started_from_its_module_makes_no_outbound_call(packaged: Path, tmp_path: Path):
    serving = str(packaged / "models" / "serving")
    trace = _serve_traced(serving, tmp_path / "home", packaged, tmp_path, "module")
    assert "127.0.0.1" in trace  # the recorder saw the driver's own requests to the service
    assert outbound_calls(trace) == []


def test_the_service_started_from_a_bento_tag_makes_no_outbound_call(bento, packaged: Path, tmp_path: Path):
    tag, home = bento
    trace = _serve_traced(tag, home, packaged, tmp_path, "bento")
    assert "127.0.0.1" in trace
    assert outbound_calls(trace) == []


def test_batch_scoring_makes_no_outbound_call(packaged: Path, tmp_path: Path):
    rows = pd.read_csv(packaged / "raw" / "telco.csv", dtype="str", keep_default_na=False).head(200)
    rows.drop(columns="Churn").to_csv(tmp_path / "in.csv", index=False)
    env = {k: v for k, v in os.environ.items() if k not in TELEMETRY}
    score = [sys.executable, "-m", "tabrepro.cli", "score", "--input", "in.csv", "--output", "out.csv"]
    score += ["--serving-dir", str(packaged / "models" / "serving"), "--no-progress"]
    done = _record(score, tmp_path / "score.strace", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(pd.read_csv(tmp_path / "out.csv")) == 200
    assert outbound_calls((tmp_path / "score.strace").read_text()) == []


def test_the_recorder_catches_a_lookup_planted_in_the_workers(packaged: Path, tmp_path: Path):
    """The module run again, with a name lookup planted in each worker: recorded, so the tests above can fail."""
    (tmp_path / "planted").mkdir()
    (tmp_path / "planted" / "sitecustomize.py").write_text(PLANTED)
    serving = str(packaged / "models" / "serving")
    planted = {"PYTHONPATH": str(tmp_path / "planted")}
    trace = _serve_traced(serving, tmp_path / "home", packaged, tmp_path, "planted", extra=planted)
    calls = outbound_calls(trace)
    assert calls and all("htons(53)" in call for call in calls), calls[:5]


def test_outbound_calls_are_told_from_loopback():
    trace = "\n".join(
        [
            '7 connect(3, {sa_family=AF_INET, sin_port=htons(3000), sin_addr=inet_addr("127.0.0.1")}, 16) = 0',
            '7 connect(4, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = -1 ENOENT',
            '7 sendto(5, "GET / HTTP/1.1", 14, 0, NULL, 0) = 14',
            '8 connect(7, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("127.0.0.11")}, 16) = 0',
            '8 connect(7, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("20.42.65.92")}, 16) = -1',
            "9 connect(8, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "
            '"2603:1030::1", &sin6_addr), sin6_scope_id=0}, 28) = -1',
            "9 connect(8, {sa_family=AF_INET6, sin6_port=htons(80), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "
            '"::1", &sin6_addr), sin6_scope_id=0}, 28) = 0',
        ]
    )
    assert [line.split()[0] + line.split("htons(")[1][:3] for line in outbound_calls(trace)] == ["853)", "8443", "9443"]


def test_the_bento_and_the_makefile_switch_telemetry_off_and_bind_loopback():
    import yaml

    bentofile = yaml.safe_load((REPO / "bentos" / "bentofile.yaml").read_text())
    envs = {e["name"]: e["value"] for e in bentofile["envs"]}
    assert envs["ORT_DISABLE_TELEMETRY"] == "1" and envs["BENTOML_DO_NOT_TRACK"] == "True"
    makefile = (REPO / "Makefile").read_text()
    assert "export ORT_DISABLE_TELEMETRY := 1" in makefile and "export BENTOML_DO_NOT_TRACK := True" in makefile
    serve = [line for line in makefile.splitlines() if "bentoml serve" in line]
    assert serve and all("--host 127.0.0.1" in line for line in serve)
