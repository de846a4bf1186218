"""The columns that batch scoring writes per task, the columns of ``evaluate``'s predictions file:

- binary: ``probability`` (of the positive class, float32) and ``label`` (``probability >= threshold``, int8);
- multiclass: ``label`` (the most probable class, by name) and ``probability__<class>`` per class in the
  contract's order (float32, the graph's ``probabilities`` columns);
- regression: ``prediction`` (float32, the graph's one value per row).

Every file starts with the contract's key column and ends with ``model_version``. The task is the packaged
contract's (``contract.target.task``); pure functions of the graph's outputs, so the single-process and the Dask
scorers write the same bytes.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from tabrepro.contract.spec import DataContract


def empty_output(contract: DataContract) -> np.ndarray:
    """The scores of no rows, shaped as ``monitoring.scores.graph_output``'s."""
    if contract.target.task == "multiclass":
        return np.empty((0, len(contract.target.labels)), dtype=np.float32)
    return np.empty(0, dtype=np.float32)


def score_columns(output: np.ndarray, contract: DataContract, *, threshold: float | None) -> dict[str, pa.Array]:
    """The task's columns (between the key and ``model_version``) from ``monitoring.scores.graph_output``'s scores."""
    task = contract.target.task
    if task == "regression":
        return {"prediction": pa.array(output, type=pa.float32())}
    if task == "binary":
        if threshold is None:
            raise ValueError("a binary model needs its packaged threshold")
        labels = (output >= threshold).astype(np.int8)
        return {"probability": pa.array(output, type=pa.float32()), "label": pa.array(labels, type=pa.int8())}
    classes = np.asarray(contract.target.labels, dtype=object)
    columns: dict[str, pa.Array] = {"label": pa.array(classes[output.argmax(axis=1)], type=pa.string())}
    for k, name in enumerate(contract.target.labels):
        columns[f"probability__{name}"] = pa.array(np.ascontiguousarray(output[:, k]), type=pa.float32())
    return columns


def score_fields(contract: DataContract) -> list[tuple[str, pa.DataType]]:
    """The names and types of ``score_columns``'s columns."""
    task = contract.target.task
    if task == "regression":
        return [("prediction", pa.float32())]
    if task == "binary":
        return [("probability", pa.float32()), ("label", pa.int8())]
    return [("label", pa.string()), *((f"probability__{c}", pa.float32()) for c in contract.target.labels)]
