"""A package stage killed while it builds the bento leaves the BentoML store whole, and the next build repairs
what it left: afterwards the reported tag is in the store and ``tabrepro:latest`` resolves to it.

Every build runs in a subprocess with its own ``BENTOML_HOME`` (BentoML reads it once per process).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = """
import sys
from pathlib import Path
from tabrepro.packaging.store import build_bento
print(build_bento(Path(sys.argv[1]), Path(sys.argv[2]), template=Path("bentos/bentofile.yaml"), labels={"test": "yes"},
                  version=sys.argv[3], receipt=Path("published.json")), flush=True)
"""
LATEST = "import bentoml; b = bentoml.bentos.get('tabrepro:latest'); print(b.tag); print(b.path)"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """The bentofile template, a serving folder and an empty BentoML home. The serving files are stand-ins (the
    build copies them, byte for byte, and checks nothing in them), so no pipeline has to run first."""
    (tmp_path / "bentos").mkdir()
    shutil.copy(REPO / "bentos" / "bentofile.yaml", tmp_path / "bentos" / "bentofile.yaml")
    (tmp_path / "serving").mkdir()
    (tmp_path / "serving" / "manifest.json").write_text('{"version": "stand-in"}\n')
    (tmp_path / "serving" / "model.onnx").write_bytes(np.random.default_rng(0).bytes(50_000))
    return tmp_path


def _env(workspace: Path) -> dict[str, str]:
    return {**os.environ, "BENTOML_HOME": str(workspace / "bentoml"), "BENTOML_DO_NOT_TRACK": "True"}


def _start(workspace: Path, version: str) -> subprocess.Popen:
    command = [sys.executable, "-c", BUILD, "serving", f"{version}.bento", version]
    return subprocess.Popen(command, cwd=workspace, env=_env(workspace), stdout=subprocess.PIPE, text=True)


def _build(workspace: Path, version: str) -> str:
    proc = _start(workspace, version)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0
    return out.strip().splitlines()[-1]


def _latest(workspace: Path) -> tuple[str, Path]:
    done = subprocess.run(
        [sys.executable, "-c", LATEST], env=_env(workspace), capture_output=True, text=True, check=True, timeout=120
    )
    tag, path = done.stdout.split()[-2:]
    return tag, Path(path)


def _complete(bento: Path, serving: Path) -> bool:
    """The bento holds the packaged model byte for byte (the last thing a partial copy may lack)."""
    packaged = bento / "src" / "models" / "serving"
    return all((packaged / f.name).read_bytes() == f.read_bytes() for f in serving.iterdir())


def test_a_build_killed_midway_is_repaired_by_the_next(workspace: Path):
    assert _build(workspace, "v1") == "tabrepro:v1"
    store = workspace / "bentoml" / "bentos" / "tabrepro"
    proc = _start(workspace, "v2")
    deadline = time.monotonic() + 120
    while not list((workspace / "bentoml" / "tmp").glob(".staging-*/ctx/bentofile.yaml")):
        assert proc.poll() is None and time.monotonic() < deadline, "the build ended before it could be killed"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    left = list((workspace / "bentoml" / "tmp").glob(".staging-*"))
    assert [p.name.split("-")[1] for p in left] == [str(proc.pid)]
    assert not (store / "v2").exists(), "nothing half-copied in the store"
    assert _latest(workspace)[0] == "tabrepro:v1"

    assert _build(workspace, "v2") == "tabrepro:v2"
    tag, path = _latest(workspace)
    assert tag == "tabrepro:v2" and _complete(path, workspace / "serving")
    assert not list((workspace / "bentoml" / "tmp").glob(".staging-*")), "the killed build's leftovers are gone"


def test_the_leftovers_of_a_copy_killed_inside_bentoml_are_replaced(workspace: Path):
    """BentoML copies a bento into its store file by file, bento.yaml first, and moves ``latest`` after: a kill
    during that copy left (measured) a version folder with bento.yaml and some of the files, ``latest`` unmoved.
    Rebuilding that version replaces it whole and moves ``latest`` to it."""
    _build(workspace, "v1")
    store = workspace / "bentoml" / "bentos" / "tabrepro"
    (store / "v2").mkdir()
    shutil.copy(store / "v1" / "bento.yaml", store / "v2" / "bento.yaml")
    (store / "latest").write_text("v1")

    assert _build(workspace, "v2") == "tabrepro:v2"
    tag, path = _latest(workspace)
    assert tag == "tabrepro:v2" and path == store / "v2" and _complete(path, workspace / "serving")
    assert (workspace / "v2.bento").stat().st_size > 0


def test_latest_follows_the_packaged_model_when_an_older_version_is_packaged_again(workspace: Path):
    _build(workspace, "v1")
    _build(workspace, "v2")
    assert _build(workspace, "v1") == "tabrepro:v1"  # e.g. a revert: the same model as before, packaged again
    assert _latest(workspace)[0] == "tabrepro:v1"
    assert sorted(p.name for p in (workspace / "bentoml" / "bentos" / "tabrepro").iterdir()) == ["latest", "v1", "v2"]
