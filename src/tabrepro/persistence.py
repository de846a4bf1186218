"""skops persistence with an explicit allow-list: nothing outside scikit-learn / NumPy / SciPy is loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import skops.io as sio

_ALLOWED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.")


def dump_skops(obj: Any, path: str | Path) -> None:
    """Persist a scikit-learn object with skops (no pickle)."""
    sio.dump(obj, Path(path))


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
