"""What the service reads at start-up, read within bounds: JSON files and numeric settings.

A ``manifest.json`` of deeply nested JSON (``'[' * 200000``) raised an uncaught ``RecursionError`` when the class
was declared (a crash loop under a supervisor), and ``TABREPRO_WORKERS=²`` passed ``str.isdigit`` and failed in
``int``. Here a file is refused past ``MAX_FILE_BYTES`` or ``body.MAX_DEPTH`` levels (and for a repeated key), and
every number in a setting goes through ``parse_number``: ASCII digits only, in range, or a ConfigError naming the
setting and the value. The service turns each failure into a 503 on ``/readyz`` with the reason.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tabrepro.errors import ConfigError, TabreproError
from tabrepro.serving.body import MAX_DEPTH, BodyError, parse_strict_json

MAX_FILE_BYTES = 4 * 1024 * 1024  # a manifest is ~16 KB (its contract included)
_INTEGER = re.compile(r"[0-9]{1,9}")
_DECIMAL = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,9})?")


def read_bounded_json(path: Path, *, error: type[TabreproError], hint: str = "") -> Any:
    """The parsed JSON of ``path``; ``error`` naming the file when it is missing, unreadable, over
    ``MAX_FILE_BYTES``, nested deeper than ``body.MAX_DEPTH``, has a repeated key or is not JSON."""
    suffix = f" ({hint})" if hint else ""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise error(f"{path}: not found{suffix}") from None
    except OSError as exc:
        raise error(f"{path}: cannot read it: {exc}{suffix}") from None
    if len(data) > MAX_FILE_BYTES:
        raise error(f"{path}: more than {MAX_FILE_BYTES:,} bytes, not a file the service reads{suffix}")
    try:
        return parse_strict_json(data, max_number_chars=64, max_depth=MAX_DEPTH)
    except BodyError as exc:
        reason = str(exc).removeprefix("body: ")
        raise error(f"{path}: {reason}, truncated or edited?{suffix}") from None


def parse_number(
    raw: str, *, name: str, low: float, high: float, integer: bool = False, kind: str | None = None
) -> float:
    """``raw`` (surrounding spaces and, for a percentage, a trailing % allowed) as a number from ``low`` to
    ``high``: ASCII digits and at most one decimal point, nothing else (no sign, exponent, ``_``, ``²`` or ``٣``)."""
    text = raw.strip().removesuffix("%").strip() if not integer else raw.strip()
    pattern = _INTEGER if integer else _DECIMAL
    value = float(text) if pattern.fullmatch(text) else None
    if value is None or not low <= value <= high:
        kind = kind or ("a whole number" if integer else "a number")
        shown = repr(raw if len(raw) <= 40 else f"{raw[:40]}...")
        raise ConfigError(f"{name}: expected {kind} from {low:g} to {high:g}, got {shown}")
    return int(value) if integer else value
