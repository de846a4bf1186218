"""What one record's answer holds, per task (issue 21), in the response and the prediction log alike.

- binary: ``probability`` (of the positive class) and ``label`` (1 at or above the model's threshold, else 0);
- multiclass: ``label`` (the class name of the largest probability, the first on a tie) and ``probabilities``
  keyed by class name, in the contract's class order;
- regression: ``prediction``, the model's value, in the target's unit.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def answer_fields(value: Any, *, task: str, classes: tuple[str, ...], threshold: float | None) -> dict[str, Any]:
    """The answer to one record from its ``value`` (a float, or a list of class probabilities for multiclass)."""
    if task == "regression":
        return {"prediction": value}
    if task == "multiclass":
        return {"label": classes[int(np.argmax(value))], "probabilities": dict(zip(classes, value, strict=True))}
    if threshold is None:
        raise ValueError("a binary model without a threshold")
    return {"probability": value, "label": int(value >= threshold)}


def finite(value: Any) -> bool:
    """Whether every number of ``value`` (a float or a list of floats) is finite."""
    return all(math.isfinite(v) for v in value) if isinstance(value, list) else math.isfinite(value)


def one_per_row(scores: np.ndarray, *, task: str) -> np.ndarray:
    """The probability each record's answer stands on (binary P(positive), multiclass the top label's), for the
    probability histograms; empty for regression, whose predictions are no probabilities."""
    if task == "regression":
        return np.empty(0)
    return np.max(scores, axis=1) if task == "multiclass" else scores
