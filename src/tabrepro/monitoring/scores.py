"""The packaged model's scores per task, and the one distribution of them that drift watches.

``graph_output`` runs the packaged graph and returns the task's scores: binary (n,) P(positive); multiclass
(n, K) probabilities in the contract's class order; regression (n,) predictions. ``watched_values`` reduces them
to the values whose distribution drift compares with the score reference: binary the probability, regression
the prediction (quantile bins, PSI and the two-sample KS test, as for a numeric feature), multiclass the predicted
class's index, binned one class per bin (so the PSI is the PSI of the predicted-class frequencies).
``compute_task_score_reference`` is the reference of those values, in ``ScoreReference``'s layout: package calls
it on the test split's scores (binary: the same bytes as ``compute_score_reference``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort

from tabrepro.monitoring.drift import REFERENCE_SAMPLE, compute_score_reference, watched_values

REGRESSION_OUTPUTS = ("prediction", "variable")  # the name the regression graph gives its value, by preference


def graph_output(session: ort.InferenceSession, feeds: dict[str, np.ndarray], *, task: str) -> np.ndarray:
    """The task's scores from one ``session.run``, float32 (the model's own precision)."""
    if task == "regression":
        names = [o.name for o in session.get_outputs()]
        name = next((n for n in REGRESSION_OUTPUTS if n in names), names[0])
        return np.ascontiguousarray(np.asarray(session.run([name], feeds)[0], dtype=np.float32).reshape(-1))
    probabilities = np.asarray(session.run(["probabilities"], feeds)[0], dtype=np.float32)
    return np.ascontiguousarray(probabilities[:, 1]) if task == "binary" else probabilities


def compute_task_score_reference(
    output: np.ndarray, *, task: str, bins: int = 10, sample_size: int = REFERENCE_SAMPLE, seed: int = 0
) -> dict[str, Any]:
    """The score reference of the task's scores on the test split (``ScoreReference``'s layout). Multiclass:
    one bin per class (edges halfway between class indices) whatever ``bins`` says."""
    if task != "multiclass":
        return compute_score_reference(watched_values(output, task=task), bins=bins, sample_size=sample_size, seed=seed)
    values = watched_values(output, task=task)
    n_classes = np.asarray(output).shape[1]
    if values.size == 0:
        raise ValueError("cannot compute a score reference from no predictions")
    reference = compute_score_reference(values, bins=bins, sample_size=sample_size, seed=seed)
    edges = np.arange(n_classes - 1) + 0.5
    counts = np.bincount(values.astype(int), minlength=n_classes)
    return reference | {
        "edges": [float(e) for e in edges],
        "fractions": [round(float(c / values.size), 6) for c in counts],
    }
