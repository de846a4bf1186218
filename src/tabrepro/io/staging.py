"""Writing stage outputs so that a failure leaves the previous good outputs in place.

DVC's outputs in this project are ``persist: true`` (DVC does not delete them before a stage runs), so each
stage builds all of its outputs in a staging folder and only moves them into place once every one of them has
been written. A stage that raises before that point has changed nothing on disk.

A stage killed outright (SIGKILL, out of memory, power) cannot clean up: it leaves its ``.staging-<pid>-*``
folder, and if it died while swapping a folder into place, the previous one as ``.<name>.<pid>.old``. Both names
carry the writer's process id, so the next ``staged_outputs`` next to them removes those whose process is gone
(restoring an ``.old`` folder whose destination is missing) and leaves those of a process still running. The
commit (``_commit``) ends with one rename and keeps an output missing until then, so a killed run always leaves
DVC a reason to run the stage again: no leftover outlives a ``dvc repro`` that finds nothing to do.

``check_output_path`` is the up-front check of the commands' output options (``--output``, ``--report``...): a
folder where a file is expected, or a parent that is a file or not writable, is refused before any work is done.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from tabrepro.errors import TabreproError

log = logging.getLogger(__name__)

STAGING_PREFIX = ".staging-"
_ASIDE_NOTE = "set-aside.json"  # in a staging folder: where the path it holds was taken from (``set_aside``)
_OWNER = re.compile(r"^\.staging-(\d+)-|^\..+\.(\d+)\.old$")


class OutputPathError(TabreproError, ValueError):
    """An output option names a path the command cannot write; the message names the option and the path."""


@contextmanager
def staged_outputs(*destinations: str | Path, withhold: bool = False) -> Iterator[list[Path]]:
    """Yield one staging path per destination; on success replace each destination with it.

    A destination may be a file or a folder. On an exception nothing is replaced and the staging area is removed.
    What a killed earlier run left next to the destinations is cleared first (``remove_stale``).

    ``withhold`` (the DVC stages): the key output (``_key``) is set aside for the whole run, so a run killed at any
    point leaves it missing and ``dvc repro`` runs the stage again, clearing what the killed run left (without it,
    a re-run whose outputs are byte-identical to those in ``dvc.lock`` finds nothing to do and the leftovers stay).
    An exception puts it back; so does the next run in the same folder after a kill, before it writes anew.
    """
    dests = [Path(d) for d in destinations]
    parent = _common_parent(dests)
    remove_stale(parent, dests)
    root = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=parent))
    key = _key(dests)
    try:
        if withhold and _present(dests[key]):
            set_aside(dests[key], root=root)
        staged = [root / f"{i}-{d.name}" for i, d in enumerate(dests)]
        yield staged
        missing = [str(d) for d, s in zip(dests, staged, strict=True) if not s.exists()]
        if missing:
            raise RuntimeError(f"stage did not write its outputs: {missing}")
        _commit(list(zip(dests, staged, strict=True)), root, key=key)
    except BaseException:
        if _present(root / "set-aside") and not _present(dests[key]):
            put_in_place(root / "set-aside", dests[key], root=root)
        raise
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _key(dests: list[Path]) -> int:
    """The output renamed last: the last that is a file now (a stage lists its receipt or summary last), else the
    first that exists, else the first."""
    files = [i for i, d in enumerate(dests) if d.is_file()]
    return files[-1] if files else next((i for i, d in enumerate(dests) if d.exists()), 0)


def _present(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def _commit(pairs: list[tuple[Path, Path]], root: Path, *, key: int) -> None:
    """Move the staged outputs into place so that a kill at any moment leaves either no leftover or the key output
    missing. The last step is one rename, of the key output: it is staged beside its destination
    (``.staging-<pid>-key-<name>``) and its previous version is set aside in the staging folder (if not already)
    before the others are replaced and every leftover is removed. A run killed before that rename has left its
    key output missing, so ``dvc repro`` runs the stage again even when the new outputs are byte-identical to the
    recorded ones, and that run clears the leftovers (``remove_stale``)."""
    dest_key, src_key = pairs[key]
    final = dest_key.parent / f"{STAGING_PREFIX}{os.getpid()}-key-{dest_key.name}"
    os.replace(src_key, final)
    try:
        if _present(dest_key):
            set_aside(dest_key, root=root)
        for dest, src in pairs[:key] + pairs[key + 1 :]:
            _replace(src, dest)
    except BaseException:
        _remove(final)
        raise
    shutil.rmtree(root, ignore_errors=True)
    os.replace(final, dest_key)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def staging_folder(parent: Path, *, replacing: Sequence[Path] = ()) -> Iterator[Path]:
    """A fresh ``.staging-<pid>-*`` folder in ``parent``, removed on exit; what killed runs left in ``parent``
    (and next to the ``replacing`` destinations) is cleared first."""
    remove_stale(parent, list(replacing))
    root = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=parent))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def remove_stale(parent: Path, destinations: list[Path]) -> None:
    """Remove the staging folders in ``parent`` (and staged key outputs beside ``destinations``) and the ``.old``
    copies of ``destinations`` whose writer is gone.

    An ``.old`` copy whose destination is missing (killed between the two renames of ``_replace``) is put back.
    """
    folders = {parent.resolve(), *(d.parent.resolve() for d in destinations)}  # key outputs: beside their dest
    for leftover in sorted(p for f in folders for p in f.glob(f"{STAGING_PREFIX}*")):
        if not _writer_alive(leftover.name):
            if leftover.is_dir():
                _put_back(leftover)
            log.warning("removing %s, left by a run that was killed", leftover)
            _remove(leftover)
    for dest in destinations:
        for old in _old_copies(dest):
            if _writer_alive(old.name):
                continue
            if dest.exists():
                log.warning("removing %s, left by a run that was killed", old)
                shutil.rmtree(old, ignore_errors=True)
            else:
                log.warning("restoring %s from %s, left by a run killed while replacing it", dest, old)
                os.replace(old, dest)


def set_aside(path: Path, *, root: Path) -> Path:
    """Move ``path`` into the staging folder ``root`` (as ``root/set-aside``) so that something else can take its
    place; a note in ``root`` says where it came from, so that if this process is killed before ``put_in_place``
    the next ``staging_folder`` in the same parent moves it back (when nothing has taken its place)."""
    saved = root / "set-aside"
    note = root / f".{_ASIDE_NOTE}"
    write_json(note, {"path": str(path.absolute())})
    os.replace(note, root / _ASIDE_NOTE)  # the note exists whole before the move, or not at all
    os.replace(path, saved)
    return saved


def put_in_place(source: Path, path: Path, *, root: Path) -> None:
    """Move ``source`` to ``path`` (set aside from the staging folder ``root`` before) and drop the note."""
    os.replace(source, path)
    (root / _ASIDE_NOTE).unlink(missing_ok=True)


def _put_back(folder: Path) -> None:
    """Undo a ``set_aside`` that a killed process did not finish: its path is missing, put the saved one back."""
    note, saved = folder / _ASIDE_NOTE, folder / "set-aside"
    if not note.is_file() or not saved.exists():
        return
    try:
        path = Path(read_json(note)["path"])
    except (OSError, ValueError, KeyError, TypeError):
        return
    if not path.exists():
        log.warning("restoring %s, left set aside by a run killed while replacing it", path)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(saved, path)


def _old_copies(dest: Path) -> list[Path]:
    """``.<name>.<pid>.old`` (and ``.<name>.old``, as older versions named it) next to ``dest``."""
    pattern = re.compile(rf"\.{re.escape(dest.name)}\.(\d+\.)?old")
    return [p for p in dest.parent.glob(f".{dest.name}.*old") if pattern.fullmatch(p.name) and p.is_dir()]


def _writer_alive(name: str) -> bool:
    """Whether the process that named this leftover still runs (names without a pid come from older versions)."""
    match = _OWNER.match(name)
    if match is None:
        return False
    pid = int(match.group(1) or match.group(2))
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def _common_parent(dests: list[Path]) -> Path:
    for d in dests:
        d.parent.mkdir(parents=True, exist_ok=True)
    parent = Path(os.path.commonpath([str(d.parent.resolve()) for d in dests]))
    return parent


def _replace(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir() and dest.exists():
        old = dest.with_name(f".{dest.name}.{os.getpid()}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dest, old)
        os.replace(src, dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(src, dest)


def check_output_path(path: str | Path, *, option: str, kind: Literal["file", "folder"] = "file") -> Path:
    """Refuse, before any work, an output path that cannot be written: a folder where a file goes (or the
    reverse), a device, pipe or socket where a file goes, or a parent that is a file or not writable. Missing
    parent folders are fine (they are created)."""
    path = Path(path)
    if kind == "file" and path.is_dir():
        raise OutputPathError(f"{option} {path}: is a folder; expected the path of a file to write")
    if kind == "folder" and path.exists() and not path.is_dir():
        raise OutputPathError(f"{option} {path}: is a file; expected a folder (it is replaced on each run)")
    if kind == "file" and path.exists() and not path.is_file():
        raise OutputPathError(
            f"{option} {path}: not a regular file (a device, pipe or socket); outputs are written beside it and "
            "renamed into place, which would replace it: name a file"
        )
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputPathError(f"{option} {path}: {ancestor} is a file, so no folder can be made there")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputPathError(f"{option} {path}: cannot write in {ancestor} (permission denied)")
    return path


def check_report_paths(
    report: Path, figures: Path | None, *, option: str = "--report", figures_option: str = "--figures"
) -> Path:
    """``check_output_path`` of a JSON report and its PNG folder (``figures``, by default ``figures/`` beside the
    report), the pair ``drift``, ``outcomes`` and ``score --drift-report`` write; the figures folder to use."""
    figures_dir = figures or report.parent / "figures"
    check_output_path(report, option=option)
    check_output_path(figures_dir, option=figures_option, kind="folder")
    return figures_dir


def write_json(path: str | Path, data: Any) -> None:
    """Write JSON in insertion order (reports read top-down); NaN is refused, not written as invalid JSON."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def read_json(path: str | Path) -> Any:
    """Parse a JSON file (callers that read user-supplied files catch ``OSError`` and ``JSONDecodeError``)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))
