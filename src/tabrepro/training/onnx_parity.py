"""The parity gate of a regression or multiclass graph (binary: ``onnx_export.check_parity``), and what each task's
graph outputs as its score.

- regression: ``max |Δ| / scale`` with ``scale = max(max |y_pipeline|, 1e-12)`` over the test split (the
  predictions' own magnitude, so a target in thousands is held to the same relative float32 promise as one in
  units) must not exceed ``package.tolerance``;
- multiclass: ``max |Δp|`` over every row and class must not exceed the tolerance, and the argmax must agree on
  every row whose top-two probability margin (of the pipeline) exceeds the tolerance; rows within it
  (``near_tie``) may break either way in float32 and are counted, not compared (as binary does at its threshold).
"""

from __future__ import annotations

import numpy as np

from tabrepro.artefacts import MulticlassParity, RegressionParity
from tabrepro.config.precision import significant
from tabrepro.errors import TabreproError

SCALE_FLOOR = 1e-12


class PackagingError(TabreproError, RuntimeError):
    """The ONNX graph does not reproduce the fitted pipeline closely enough to be shipped."""


def output_name(task: str) -> str:
    """The graph output that carries the task's score: ``probabilities`` or (regression) ``prediction``."""
    return "prediction" if task == "regression" else "probabilities"


def score_of(output: np.ndarray, *, task: str) -> np.ndarray:
    """What parity compares, from the graph's output: binary (n,) P(positive); multiclass (n, K); regression (n,)."""
    if task == "multiclass":
        return np.asarray(output)
    return np.asarray(output)[:, 0 if task == "regression" else 1]


def regression_parity(expected: np.ndarray, actual: np.ndarray, *, tolerance: float, graph: str) -> RegressionParity:
    diff = float(np.max(np.abs(expected - actual)))
    scale = max(float(np.max(np.abs(expected))), SCALE_FLOOR)
    if diff / scale > tolerance:
        raise PackagingError(
            f"{graph} and the fitted pipeline disagree on the test split: max |Δ| {diff:.3g} over the largest "
            f"|prediction| {scale:.6g} is {diff / scale:.3g} (tolerance {tolerance:g}); nothing was built"
        )
    return RegressionParity(
        max_abs_diff=significant(diff),
        scale=significant(scale, digits=6),
        max_rel_diff=significant(diff / scale),
        rows=len(actual),
        tolerance=tolerance,
    )


def multiclass_parity(expected: np.ndarray, actual: np.ndarray, *, tolerance: float, graph: str) -> MulticlassParity:
    diff = float(np.max(np.abs(expected - actual)))
    top_two = np.sort(expected, axis=1)[:, -2:]
    near = (top_two[:, 1] - top_two[:, 0]) <= tolerance
    flipped = np.argmax(expected, axis=1) != np.argmax(actual, axis=1)
    flips, within = int(np.sum(flipped & ~near)), int(np.sum(near))
    if diff > tolerance or flips:
        raise PackagingError(
            f"{graph} and the fitted pipeline disagree on the test split: max |Δp| {diff:.3g} (tolerance "
            f"{tolerance:g}), {flips} argmax flip(s) among the rows whose top-two margin exceeds the tolerance "
            f"({within} within it, not compared); nothing was built"
        )
    return MulticlassParity(
        max_abs_diff=significant(diff), label_flips=flips, near_tie=within, rows=len(actual), tolerance=tolerance
    )
