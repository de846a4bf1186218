"""The bento as a reproducible build, and a re-publish of the same version that no kill can lose.

Builds run in subprocesses with their own ``BENTOML_HOME`` (BentoML reads it once per process), on the stand-in
serving folder of ``test_bento_store.py``.
"""

from __future__ import annotations

import hashlib
import lzma
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from tabrepro.packaging.archive import BUILD_TIME, tree_sha256
from tabrepro.packaging.store import code_sha256
from tests.integration.test_bento_store import BUILD, REPO, _build, _complete, _env, _latest, _start

# Run in the build's subprocess before BUILD: a system without an atomic exchange, and a kill (SIGKILL, nothing
# runs after it) right after the old version is set aside, before the new one is moved in: the moment between
# the two renames, which cannot be caused from outside.
KILL_BETWEEN_RENAMES = """
import os, signal
from pathlib import Path
import tabrepro.packaging.store as store
store._exchange = lambda first, second: False
_replace = os.replace
def replace(src, dst, *args, **kwargs):
    _replace(src, dst, *args, **kwargs)
    if Path(dst).name == "set-aside":
        os.kill(os.getpid(), signal.SIGKILL)
os.replace = replace
"""


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """The bentofile template, stand-in serving files (the build copies them byte for byte) and no store yet."""
    (tmp_path / "bentos").mkdir()
    shutil.copy(REPO / "bentos" / "bentofile.yaml", tmp_path / "bentos" / "bentofile.yaml")
    (tmp_path / "serving").mkdir()
    (tmp_path / "serving" / "manifest.json").write_text('{"version": "stand-in"}\n')
    (tmp_path / "serving" / "model.onnx").write_bytes(np.random.default_rng(0).bytes(50_000))
    return tmp_path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _killed_build(workspace: Path, version: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", KILL_BETWEEN_RENAMES + BUILD, "serving", f"{version}.bento", version]
    return subprocess.run(command, cwd=workspace, env=_env(workspace), capture_output=True, text=True, timeout=300)


def test_the_same_inputs_give_the_same_archive_and_it_imports(workspace: Path, tmp_path: Path):
    _build(workspace, "v1")
    first = _sha256(workspace / "v1.bento")
    (workspace / "v1.bento").unlink()
    _build(workspace, "v1")  # later, over the bento already in the store
    assert _sha256(workspace / "v1.bento") == first
    with tarfile.open(fileobj=lzma.open(workspace / "v1.bento")) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names) and "./bento.yaml" in names and "./src/tabrepro/serving/service.py" in names
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(315_532_800, 0, 0, "root", "root")}
    assert {m.mode for m in members} <= {0o644, 0o755}

    home = tmp_path / "serving-host"
    env = {**_env(workspace), "BENTOML_HOME": str(home)}
    command = [sys.executable, "-m", "bentoml", "import", str(workspace / "v1.bento")]
    imported = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert imported.returncode == 0, imported.stderr
    bento = home / "bentos" / "tabrepro" / "v1"
    info = yaml.safe_load((bento / "bento.yaml").read_text())
    assert str(info["creation_time"]) in (BUILD_TIME, "1980-01-01 00:00:00+00:00")
    assert tree_sha256(bento / "src" / "tabrepro") == code_sha256()  # the code label is checkable on the host
    assert _complete(bento, workspace / "serving")


def test_a_kill_between_the_renames_of_a_republish_is_undone_by_the_next_build(workspace: Path):
    _build(workspace, "v1")
    (workspace / "published.json").write_text("{}\n")  # the receipt of that build, as package writes it
    killed = _killed_build(workspace, "v1")
    assert killed.returncode == -9, killed.stderr
    store = workspace / "bentoml" / "bentos" / "tabrepro"
    assert not (store / "v1").exists(), "the kill hit the moment the version is missing from the store"
    assert not (workspace / "published.json").exists(), "the receipt is gone, so dvc repro runs package again"

    _build(workspace, "v2")  # another version: the set-aside v1 is put back before anything else
    assert _complete(store / "v1", workspace / "serving")
    assert _latest(workspace)[0] == "tabrepro:v2"
    assert _build(workspace, "v1") == "tabrepro:v1"
    tag, path = _latest(workspace)
    assert tag == "tabrepro:v1" and _complete(path, workspace / "serving")
    assert not list((workspace / "bentoml" / "tmp").glob(".staging-*")), "the killed build's leftovers are gone"


def test_a_republish_swaps_the_version_in_one_step(workspace: Path):
    """Where the system has an atomic exchange (Linux), the old version is never missing: a kill right after
    the swap leaves the new version in place and ``latest`` still pointing at it."""
    _build(workspace, "v1")
    (workspace / "serving" / "manifest.json").write_text('{"version": "changed"}\n')
    killer = KILL_BETWEEN_RENAMES.replace("store._exchange = lambda first, second: False\n", "")
    command = [sys.executable, "-c", killer + BUILD, "serving", "v1.bento", "v1"]
    done = subprocess.run(command, cwd=workspace, env=_env(workspace), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr  # no set-aside happened, so the kill hook never fired
    tag, path = _latest(workspace)
    assert tag == "tabrepro:v1" and _complete(path, workspace / "serving")


def test_a_kill_during_the_build_withholds_the_receipt_and_a_failure_keeps_it(workspace: Path):
    _build(workspace, "v1")
    receipt = workspace / "published.json"
    receipt.write_text('{"tag": "tabrepro:v1"}\n')
    proc = _start(workspace, "v2")
    deadline = time.monotonic() + 120
    while not list((workspace / "bentoml" / "tmp").glob(".staging-*/ctx/bentofile.yaml")):
        assert proc.poll() is None and time.monotonic() < deadline, "the build ended before it could be killed"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not receipt.exists(), "killed mid-build: package must run again (and clear the leftovers)"

    receipt.write_text('{"tag": "tabrepro:v1"}\n')
    template = workspace / "bentos" / "bentofile.yaml"
    template.write_text(template.read_text().replace("    - numpy\n", "    - not-an-installed-package\n"))
    failed = subprocess.run(
        [sys.executable, "-c", BUILD, "serving", "v3.bento", "v3"], cwd=workspace, env=_env(workspace), text=True,
        capture_output=True, timeout=300, check=False,
    )  # fmt: skip
    assert failed.returncode != 0 and "not-an-installed-package" in failed.stderr
    assert receipt.read_text() == '{"tag": "tabrepro:v1"}\n', "the store was not touched: the receipt still holds"
    assert _latest(workspace)[0] == "tabrepro:v1"
