"""Build the bento offline and publish it in the BentoML store so that no kill leaves the store without it.

BentoML saves a bento by copying it file by file into its store (``bento.yaml`` first) and moves ``latest``
after that: a build killed midway left an entry that loads but lacks files. So the bento is built into a private
store in ``BENTOML_HOME/tmp/.staging-<pid>-*`` (which the next build removes once that process is gone), its
build time fixed (``archive.fix_build_time``), then moved into the store with one rename, and ``latest`` is
replaced with another. A version packaged before (the same model) is swapped with the new one in one atomic
exchange (Linux ``renameat2(RENAME_EXCHANGE)``); where the system has none it is set aside, with a note, and the
new one moved in: a kill between those two renames is undone by the next build (``io.staging.set_aside``), and
``dvc repro`` runs that next build because the receipt (``paths.bento_receipt``) is removed while the bento is
built and published (and put back only if that fails before the store is touched) and written once the store
holds the tag; that run also clears what a build killed earlier left in ``BENTOML_HOME/tmp``.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import shutil
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import yaml

import tabrepro
from tabrepro.io.staging import put_in_place, set_aside, staging_folder
from tabrepro.packaging.archive import files_sha256, fix_build_time, tree_sha256, write_archive

log = logging.getLogger(__name__)

# The code the bento carries: the service and what it may import (the import contract serving -> onnxrt,
# contract, artefacts, errors is checked in tests/unit/test_architecture.py), nothing of training, evaluation or
# the stages.
BENTO_CODE = ("__init__.py", "errors.py", "artefacts", "contract", "onnxrt", "serving")
_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def build_bento(
    serving_dir: Path, destination: Path, *, template: Path, labels: dict[str, str], version: str, receipt: Path
) -> str:
    """Build the bento from ``serving_dir`` and the tabrepro package, offline; publish it in the BentoML store as
    ``<name>:<version>`` and ``<name>:latest``; write its reproducible archive to ``destination``. ``receipt`` (the
    last good one) is withheld while the bento is built and published (``withheld``); the caller writes the new
    one."""
    os.environ.setdefault("BENTOML_HOME", str(Path.cwd() / ".bentoml"))
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
    import bentoml
    from bentoml._internal.bento import BentoStore
    from bentoml._internal.configuration.containers import BentoMLContainer

    store = Path(BentoMLContainer.bento_store_dir.get())
    tmp = Path(BentoMLContainer.tmp_bento_store_dir.get())
    with withheld(receipt) as store_touched, staging_folder(tmp) as private:
        ctx = build_context(private / "ctx", serving_dir, template=template, labels=labels)
        bento = bentoml.bentos.build_bentofile(
            str(ctx / "bentofile.yaml"), build_ctx=str(ctx), version=version, _bento_store=BentoStore(private / "store")
        )
        name, tag = bento.tag.name, str(bento.tag)
        built = private / "store" / name / version
        fix_build_time(built)
        write_archive(built, destination)
        expected = tree_sha256(built)
        store_touched.set()
        publish(built, store / name / version, private=private)
    check_store(store / name / version, tag=tag, expected=expected)
    latest = str(bentoml.bentos.get(f"{name}:latest").tag)
    if latest != tag:
        raise RuntimeError(f"BentoML store {store}: {name}:latest resolves to {latest}, not to {tag} just built")
    return tag


@contextmanager
def withheld(receipt: Path) -> Iterator[threading.Event]:
    """Remove ``receipt`` for the block (a kill inside it leaves it removed, so ``dvc repro`` runs package again and
    that run clears what the killed one left); put it back when the block raises before it sets the event it is
    given (the store was not touched, so the last receipt still holds)."""
    kept = receipt.read_bytes() if receipt.is_file() else None
    receipt.unlink(missing_ok=True)
    touched = threading.Event()
    try:
        yield touched
    except BaseException:
        if kept is not None and not touched.is_set():
            receipt.write_bytes(kept)
        raise


def build_context(ctx: Path, serving_dir: Path, *, template: Path, labels: dict[str, str]) -> Path:
    """The service's code (``BENTO_CODE``), ``models/serving`` and the bentofile (labels, pinned packages)."""
    spec = yaml.safe_load(template.read_text(encoding="utf-8"))
    spec["labels"] = labels
    spec["python"]["packages"] = [f"{p}=={metadata.version(p)}" for p in spec["python"]["packages"]]
    copy_code(ctx / "tabrepro")
    shutil.copytree(serving_dir, ctx / "models" / "serving")
    (ctx / "bentofile.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return ctx


def copy_code(target: Path) -> Path:
    """Copy the tabrepro modules the bento carries (``BENTO_CODE``) to ``target``."""
    package = Path(tabrepro.__file__).parent
    for part in BENTO_CODE:
        source = package / part
        if source.is_dir():
            shutil.copytree(source, target / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / part)
    return target


def code_sha256() -> str:
    """The sha256 of the code the bento carries: ``tree_sha256`` of its ``src/tabrepro`` folder, from the source."""
    package = Path(tabrepro.__file__).parent
    return files_sha256(package, [package / part for part in BENTO_CODE])


def publish(built: Path, target: Path, *, private: Path) -> None:
    """Move the built version into the store (the same version packaged before is replaced) and point ``latest``
    at it; each step is atomic within ``BENTOML_HOME``, so a kill leaves the store whole or repairable."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        os.replace(built, target)
    elif not _exchange(built, target):  # no atomic swap here: set the old one aside, with a note to undo it
        set_aside(target, root=private)
        put_in_place(built, target, root=private)
    pointer = private / "latest"
    pointer.write_text(target.name, encoding="utf-8")
    os.replace(pointer, target.parent / "latest")


def check_store(version_dir: Path, *, tag: str, expected: str) -> None:
    """The store holds exactly the bento just built (its files, byte for byte) under ``version_dir``."""
    actual = tree_sha256(version_dir) if version_dir.is_dir() else "missing"
    if actual != expected:
        raise RuntimeError(f"BentoML store: {tag} at {version_dir} is not the bento just built ({actual})")


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one atomic step (Linux ``renameat2`` with ``RENAME_EXCHANGE``); False where the system
    or the file system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(error, os.strerror(error), str(second))
