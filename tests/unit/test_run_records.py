"""Run records (when and where a stage ran, outside every output), the reproducible archive and its digests, and
the set-aside that a killed process leaves for the next staging folder to undo."""

from __future__ import annotations

import json
import lzma
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tabrepro.io.runs import write_run_record
from tabrepro.io.staging import put_in_place, set_aside, staging_folder
from tabrepro.packaging.archive import files_sha256, fix_build_time, tree_sha256, write_archive


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def _tree(root: Path, *, mtime: int, mode: int) -> Path:
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "bento.yaml").write_text("name: x\ncreation_time: '2026-01-02T03:04:05+00:00'\nlabels: {}\n")
    (root / "src" / "pkg" / "a.py").write_text("A = 1\n")
    (root / "src" / "pkg" / "run.sh").write_text("#!/bin/sh\n")
    (root / "src" / "pkg" / "__pycache__").mkdir()
    (root / "src" / "pkg" / "__pycache__" / "a.pyc").write_bytes(os.urandom(16))
    os.chmod(root / "src" / "pkg" / "run.sh", 0o755)
    for path in root.rglob("*"):
        if path.is_file() and path.suffix != ".sh":
            os.chmod(path, mode)
        os.utime(path, (mtime, mtime))
    return root


def test_a_run_record_holds_the_context_and_the_stage_fields(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from datetime import UTC, datetime

    monkeypatch.chdir(tmp_path)  # not a git repository
    path = write_run_record(tmp_path / "runs", "tune", {"search_seconds": 1.5}, started=datetime.now(UTC))
    record = json.loads(path.read_text())
    assert path == tmp_path / "runs" / "tune.json"
    assert record["stage"] == "tune" and record["search_seconds"] == 1.5 and record["git_revision"] == "unknown"
    assert record["host"] and record["wall_seconds"] >= 0 and record["finished_at"] >= record["started_at"]


def test_the_archive_depends_on_the_files_only(tmp_path: Path):
    first = _tree(tmp_path / "a", mtime=1_000_000, mode=0o600)
    second = _tree(tmp_path / "b", mtime=2_000_000, mode=0o664)
    for tree in (first, second):
        fix_build_time(tree)
        write_archive(tree, tree.with_suffix(".bento"))
    assert first.with_suffix(".bento").read_bytes() == second.with_suffix(".bento").read_bytes()
    assert tree_sha256(first) == tree_sha256(second)
    with tarfile.open(fileobj=lzma.open(first.with_suffix(".bento"))) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert list(members) == [".", "./bento.yaml", "./src", "./src/pkg", "./src/pkg/a.py", "./src/pkg/run.sh"]
    assert members["./src/pkg/run.sh"].mode == 0o755 and members["./src/pkg/a.py"].mode == 0o644
    assert "creation_time: '1980-01-01T00:00:00+00:00'" in (first / "bento.yaml").read_text()
    (second / "src" / "pkg" / "a.py").write_text("A = 2\n")
    assert tree_sha256(first) != tree_sha256(second)


def test_files_sha256_of_a_subset_equals_the_tree_of_that_subset(tmp_path: Path):
    tree = _tree(tmp_path / "a", mtime=1, mode=0o644)
    (tree / "other.txt").write_text("not carried\n")
    assert files_sha256(tree, [tree / "bento.yaml", tree / "src"]) == tree_sha256(_without(tree, "other.txt"))


def _without(tree: Path, name: str) -> Path:
    (tree / name).unlink()
    return tree


def test_fix_build_time_refuses_a_bento_yaml_without_one(tmp_path: Path):
    (tmp_path / "bento.yaml").write_text("name: x\n")
    with pytest.raises(RuntimeError, match="no creation_time"):
        fix_build_time(tmp_path)


def test_what_a_killed_process_set_aside_is_put_back_by_the_next_staging_folder(tmp_path: Path):
    target = tmp_path / "store" / "v1"
    target.mkdir(parents=True)
    (target / "bento.yaml").write_text("old\n")
    killed = tmp_path / "tmp" / f".staging-{_dead_pid()}-x"
    killed.mkdir(parents=True)
    set_aside(target, root=killed)  # ... and the process died before put_in_place
    assert not target.exists()
    with staging_folder(tmp_path / "tmp"):
        assert (target / "bento.yaml").read_text() == "old\n"
    assert not killed.exists()


def test_a_finished_replacement_is_not_undone(tmp_path: Path):
    target = tmp_path / "v1"
    target.mkdir()
    new = tmp_path / "new"
    new.mkdir()
    (new / "bento.yaml").write_text("new\n")
    root = tmp_path / "tmp" / f".staging-{_dead_pid()}-y"
    root.mkdir(parents=True)
    set_aside(target, root=root)
    put_in_place(new, target, root=root)
    with staging_folder(tmp_path / "tmp"):
        pass
    assert (target / "bento.yaml").read_text() == "new\n" and not root.exists()
