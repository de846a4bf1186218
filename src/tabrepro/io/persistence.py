"""skops persistence with an explicit allow-list: nothing outside scikit-learn / NumPy / SciPy is loaded."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import skops.io as sio

_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed zip timestamps: the same object gives the same bytes (and DVC hash)

_ALLOWED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.")


def dump_skops(obj: Any, path: str | Path) -> None:
    """Persist a scikit-learn object with skops (no pickle), byte-for-byte reproducibly.

    A skops file is a zip archive whose entries carry the time of writing, and whose nodes (and array files)
    are numbered by the objects' memory addresses. Both are canonicalised: nodes are renumbered in the order
    they appear in ``schema.json``, timestamps are fixed, so ``dvc repro -f`` twice gives the same hash.
    """
    source = zipfile.ZipFile(io.BytesIO(sio.dumps(obj)))
    renamed: dict[str, str] = {}
    schema = _renumber(json.loads(source.read("schema.json")), {}, renamed, iter(range(1 << 30)))
    with zipfile.ZipFile(Path(path), "w", compression=zipfile.ZIP_DEFLATED) as target:
        _write_entry(target, "schema.json", json.dumps(schema, sort_keys=True).encode("utf-8"))
        for old, new in sorted(renamed.items(), key=lambda item: int(item[1].split(".")[0])):
            _write_entry(target, new, source.read(old))


def _renumber(node: Any, ids: dict[int, int], files: dict[str, str], counter: Iterator[int]) -> Any:
    """Give every node a sequential ``__id__`` in sorted-key order (attribute order varies between a fitted
    and a loaded object); a cached node points at the latest node with the id it referred to."""
    if isinstance(node, list):
        return [_renumber(item, ids, files, counter) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key in sorted(node):
        value = node[key]
        if key == "__id__" and node.get("__loader__") == "CachedNode":
            out[key] = ids.setdefault(value, next(counter))
        elif key == "__id__":
            ids[value] = out[key] = next(counter)
        else:
            out[key] = _renumber(value, ids, files, counter)
    if "file" in out and isinstance(out["file"], str):
        files[out["file"]] = out["file"] = f"{out['__id__']}.npy"
    return out


def _write_entry(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    entry = zipfile.ZipInfo(name, date_time=_EPOCH)
    entry.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(entry, data)


def load_skops(path: str | Path) -> Any:
    """Load a skops file, refusing any type that is not on the allow-list (named in the error)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: skops file not found")
    untrusted = sio.get_untrusted_types(file=path)
    refused = [t for t in untrusted if not t.startswith(_ALLOWED_PREFIXES)]
    if refused:
        raise ValueError(f"{path}: refusing to load types outside the allow-list: {refused}")
    return sio.load(path, trusted=untrusted)
