"""Staged outputs: what a killed run leaves is cleared by the next one (not what a live run is writing), and
output options are checked before any work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tabrepro.io.staging import OutputPathError, check_output_path, staged_outputs
from tests.support.unprivileged import unprivileged


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


@pytest.fixture
def live_pid():
    """A process that runs for the test's duration."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def _publish(tmp_path: Path, text: str = "new") -> None:
    with staged_outputs(tmp_path / "out" / "model", tmp_path / "out" / "metrics.json") as (model, metrics):
        model.mkdir()
        (model / "weights").write_text(text)
        metrics.write_text(text)


def test_a_real_sigkill_leaves_a_staging_folder_that_the_next_run_removes(tmp_path):
    """Kill a writer inside ``staged_outputs`` for real; the next run finds its folder and removes it."""
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from tabrepro.io.staging import staged_outputs
        with staged_outputs(Path({str(tmp_path / "out" / "model")!r})) as (model,):
            model.mkdir()
            (model / "weights").write_text("half")
            print("writing", flush=True)
            time.sleep(60)
        """
    )
    writer = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "writing"
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    left = list((tmp_path / "out").glob(".staging-*"))
    assert [p.name.split("-")[1] for p in left] == [str(writer.pid)]
    _publish(tmp_path)
    assert not list((tmp_path / "out").glob(".staging-*"))
    assert (tmp_path / "out" / "model" / "weights").read_text() == "new"


def test_the_staging_folder_of_a_live_process_is_kept(tmp_path, live_pid):
    (tmp_path / "out").mkdir()
    live = tmp_path / "out" / f".staging-{live_pid}-abc123"
    dead = tmp_path / "out" / f".staging-{_dead_pid()}-def456"
    legacy = tmp_path / "out" / ".staging-k2j4h5g6"  # named before the pid was recorded
    for folder in (live, dead, legacy):
        (folder / "0-model").mkdir(parents=True)
    _publish(tmp_path)
    assert live.is_dir()
    assert not dead.exists() and not legacy.exists()


def test_an_old_copy_left_by_a_kill_is_removed_or_restored(tmp_path, live_pid):
    _publish(tmp_path, "first")
    out = tmp_path / "out"
    # killed after moving the previous folder aside, before moving the new one in: the destination is missing
    os.replace(out / "model", out / f".model.{_dead_pid()}.old")
    (out / f".model.{live_pid}.old").mkdir()  # a live writer's: left alone
    with staged_outputs(out / "model") as (model,):
        assert (out / "model" / "weights").read_text() == "first", "restored before the new outputs are staged"
        model.mkdir()
        (model / "weights").write_text("second")
    assert (out / "model" / "weights").read_text() == "second"
    assert sorted(p.name for p in out.glob(".model.*")) == [f".model.{live_pid}.old"]


def test_an_old_copy_next_to_its_destination_is_removed(tmp_path):
    _publish(tmp_path, "first")
    stale = tmp_path / "out" / ".model.old"  # as versions before the pid named it
    (stale / "x").mkdir(parents=True)
    _publish(tmp_path, "second")
    assert not stale.exists()
    assert (tmp_path / "out" / "model" / "weights").read_text() == "second"


@pytest.mark.parametrize(
    ("make", "path", "kind", "message"),
    [
        ("dir:out", "out", "file", "--output out: is a folder; expected the path of a file"),
        ("file:out", "out", "folder", "--output out: is a file; expected a folder"),
        ("file:a", "a/b/c.json", "file", "--output a/b/c.json: a is a file"),
    ],
)
def test_output_paths_that_cannot_be_written(tmp_path, monkeypatch, make, path, kind, message):
    monkeypatch.chdir(tmp_path)
    what, name = make.split(":")
    Path(name).mkdir() if what == "dir" else Path(name).write_text("x")
    with pytest.raises(OutputPathError) as err:
        check_output_path(path, option="--output", kind=kind)
    assert str(err.value).startswith(message)


def test_output_paths_that_can_be_written(tmp_path):
    (tmp_path / "old.json").write_text("{}")
    assert check_output_path(tmp_path / "old.json", option="--output") == tmp_path / "old.json"
    assert check_output_path(tmp_path / "new" / "deeper" / "x.csv", option="--output").parent.name == "deeper"
    assert check_output_path(tmp_path / "figures", option="--figures", kind="folder") == tmp_path / "figures"


def test_an_unwritable_parent(tmp_path):
    """In a subprocess without the privilege to ignore modes (as root too: tests/support/unprivileged.py)."""
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    check = textwrap.dedent(
        """
        import sys
        from tabrepro.io.staging import OutputPathError, check_output_path
        try:
            check_output_path(sys.argv[1], option="--output")
        except OutputPathError as err:
            print(err)
            sys.exit(3)
        """
    )
    try:
        target = str(locked / "new" / "x.csv")
        done = subprocess.run(unprivileged([sys.executable, "-c", check, target]), capture_output=True, text=True)
    finally:
        locked.chmod(0o700)
    assert done.returncode == 3, done.stdout + done.stderr
    assert done.stdout.strip() == f"--output {target}: cannot write in {locked} (permission denied)"
