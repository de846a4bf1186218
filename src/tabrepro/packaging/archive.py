"""A bento as a reproducible build: the same inputs give the same bytes, hence the same sha256 and DVC hash.

A bento built by BentoML differs from the last one only in ``bento.yaml``'s ``creation_time``, and the archive
``bentoml export`` writes (``shutil.make_archive``) adds the files' modification times, owners and the order the
file system lists them in. Here the build time is a constant (``BUILD_TIME``) and the archive is written with
entries sorted, one fixed time, owner root and modes 0644 / 0755. The constant, not the commit's time: the
commit that records the bento's hash in ``dvc.lock`` is made after the build, so its time cannot be in it, and
the time of the commit before would make every commit change the bento. When the bento was really built is in
the run record (``reports/runs/package.json``).
"""

from __future__ import annotations

import hashlib
import io
import lzma
import re
import tarfile
from pathlib import Path

BUILD_TIME = "1980-01-01T00:00:00+00:00"  # the earliest time a zip file holds, as in tabrepro.io.persistence
_EPOCH_SECONDS = 315_532_800  # BUILD_TIME as a Unix time: every archive member's modification time
_CREATION_TIME = re.compile(r"^creation_time: .*$", re.MULTILINE)


def fix_build_time(bento_dir: Path) -> None:
    """Replace the build time BentoML wrote into ``bento.yaml`` with ``BUILD_TIME``."""
    bento_yaml = bento_dir / "bento.yaml"
    text = bento_yaml.read_text(encoding="utf-8")
    fixed, count = _CREATION_TIME.subn(f"creation_time: '{BUILD_TIME}'", text, count=1)
    if count != 1:
        raise RuntimeError(f"{bento_yaml}: no creation_time line; BentoML changed its format")
    bento_yaml.write_text(fixed, encoding="utf-8")


def tree_sha256(root: Path) -> str:
    """One sha256 over every file under ``root``: its relative path and its bytes, in sorted order (caches
    such as ``__pycache__`` left out)."""
    return files_sha256(root, [root])


def files_sha256(root: Path, paths: list[Path]) -> str:
    """``tree_sha256`` of what ``root`` would hold if it held only ``paths`` (files, or folders taken whole)."""
    found = {f for p in paths for f in ([p] if p.is_file() else _entries(p)) if f.is_file()}
    digest = hashlib.sha256()
    for path in sorted(found, key=lambda f: f.relative_to(root).as_posix()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def write_archive(bento_dir: Path, destination: Path) -> None:
    """``bento_dir`` as an xz-compressed tar that ``bentoml import`` reads (the layout of ``bentoml export``:
    members ``./...``), byte for byte the same for the same files."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        tar.addfile(_member(".", directory=True))
        for path in _entries(bento_dir):
            name = "./" + path.relative_to(bento_dir).as_posix()
            if path.is_dir():
                tar.addfile(_member(name, directory=True))
            else:
                data = path.read_bytes()
                member = _member(name, directory=False, executable=bool(path.stat().st_mode & 0o111))
                member.size = len(data)
                tar.addfile(member, io.BytesIO(data))
    destination.write_bytes(lzma.compress(buffer.getvalue(), format=lzma.FORMAT_XZ, preset=6))


def _entries(root: Path) -> list[Path]:
    """Files and folders under ``root`` (no symlinks followed), sorted by relative path, without caches."""
    found = [p for p in root.rglob("*") if "__pycache__" not in p.parts and not p.is_symlink()]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def _member(name: str, *, directory: bool, executable: bool = False) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    member.mode = 0o755 if directory or executable else 0o644
    member.mtime = _EPOCH_SECONDS
    member.uid = member.gid = 0
    member.uname = member.gname = "root"
    return member
