"""The declared precision (params ``reproducibility.decimals``): the ONE rounding rule of every number that is
written to a tracked file or that a decision compares.

Two x86-64 CPUs can differ in the last digits of a floating-point sum (OpenBLAS picks AVX2 or AVX-512 kernels,
which add in different orders); aarch64 more so. Fits solved far below the precision (see
``tabrepro.training.modeling``) keep that noise around 1e-12, and a number rounded here to ``decimals`` places
hides it, so the files and the decisions taken on them (tuning objective, pruning, family choice, threshold) are
the same on any machine. Rounding cannot hide noise that straddles a rounding boundary: with noise of 1e-12 and
6 places that is about one value in a million.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Integral, Real
from typing import Any, SupportsFloat

DEFAULT_DECIMALS = 6  # conf/config.yaml `reproducibility.decimals`: 1e-6 is far above the noise, far below a decision


def rounded(value: SupportsFloat, decimals: int = DEFAULT_DECIMALS) -> float:
    """``value`` rounded half-even to ``decimals`` places (Python's correctly rounded ``round``, not numpy's
    scale-and-rint, which is off by an ulp for some inputs); -0.0 becomes 0.0; NaN and infinities are kept."""
    value = float(value)
    if not math.isfinite(value):
        return value
    return round(value, decimals) + 0.0


def significant(value: float, digits: int = 2) -> float:
    """``value`` to ``digits`` significant digits: for a written number that is tiny by nature (ONNX's max |Δp|,
    ~1e-7), where ``rounded``'s fixed places would write 0.0 and all of its digits would be float noise."""
    value = float(value)
    if value == 0 or not math.isfinite(value):
        return value + 0.0
    return float(f"{value:.{digits - 1}e}") + 0.0


def rounded_tree(data: Any, decimals: int = DEFAULT_DECIMALS) -> Any:
    """``data`` (JSON-like: mappings, lists, tuples, numbers) with every float ``rounded`` and numpy integers made
    ``int``; other values as they are."""
    if isinstance(data, bool | str) or data is None:
        return data
    if isinstance(data, Integral):
        return int(data)
    if isinstance(data, Real):  # float, numpy floats
        return rounded(float(data), decimals)
    if isinstance(data, Mapping):
        return {key: rounded_tree(value, decimals) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [rounded_tree(value, decimals) for value in data]
    return data


def rounded_between(low: float, high: float, decimals: int = DEFAULT_DECIMALS) -> float:
    """The midpoint of ``low < high``, ``rounded`` to ``decimals`` places, or to as many more as it takes to lie
    strictly between them (two scores closer than 10**-decimals); the exact midpoint when no rounding does, and
    ``high`` when they are neighbouring floats (nothing lies between them)."""
    if not low < high:
        raise ValueError(f"need low < high, got {low!r} and {high!r}")
    middle = low + (high - low) / 2
    for places in range(decimals, 18):
        candidate = rounded(middle, places)
        if low < candidate < high:
            return candidate
    return middle if low < middle < high else high
