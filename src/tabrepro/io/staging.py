"""Writing stage outputs so that a failure leaves the previous good outputs in place.

DVC's outputs in this project are ``persist: true`` (DVC does not delete them before a stage runs), so each
stage builds all of its outputs in a staging folder and only moves them into place once every one of them has
been written. A stage that raises before that point has changed nothing on disk.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def staged_outputs(*destinations: str | Path) -> Iterator[list[Path]]:
    """Yield one staging path per destination; on success replace each destination with it.

    A destination may be a file or a folder. On an exception nothing is replaced and the staging area is removed.
    """
    dests = [Path(d) for d in destinations]
    root = Path(tempfile.mkdtemp(prefix=".staging-", dir=_common_parent(dests)))
    try:
        staged = [root / f"{i}-{d.name}" for i, d in enumerate(dests)]
        yield staged
        missing = [str(d) for d, s in zip(dests, staged, strict=True) if not s.exists()]
        if missing:
            raise RuntimeError(f"stage did not write its outputs: {missing}")
        for dest, src in zip(dests, staged, strict=True):
            _replace(src, dest)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _common_parent(dests: list[Path]) -> Path:
    for d in dests:
        d.parent.mkdir(parents=True, exist_ok=True)
    parent = Path(os.path.commonpath([str(d.parent.resolve()) for d in dests]))
    return parent


def _replace(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir() and dest.exists():
        old = dest.with_name(f".{dest.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dest, old)
        os.replace(src, dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(src, dest)


def write_json(path: str | Path, data: Any) -> None:
    """Write JSON in insertion order (reports read top-down); NaN is refused, not written as invalid JSON."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))
