"""One ONNX graph of the whole fitted pipeline (preprocessor + model), and the proof that it equals it.

Conversion traps handled here (measured, see DESIGN.md): one graph input per contract feature (float32 for
numbers and booleans, string for categoricals), ``target_opset={"": 17, "ai.onnx.ml": 3}``, ZipMap off, and the
StandardScaler of linear models converted with ``div`` so that it divides by the scale exactly as scikit-learn.
"""

from __future__ import annotations

import time
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from tabrepro.contract.spec import DataContract
from tabrepro.errors import TabreproError
from tabrepro.serving.runtime import feeds_from_records

TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}


class PackagingError(TabreproError, RuntimeError):
    """The ONNX graph does not reproduce the fitted pipeline closely enough to be shipped."""


@cache
def _register_xgboost() -> None:
    from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes
    from xgboost import XGBClassifier

    update_registered_converter(
        XGBClassifier,
        "XGBoostXGBClassifier",
        calculate_linear_classifier_output_shapes,
        convert_xgboost,
        options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
    )


def to_onnx(pipeline: Pipeline, contract: DataContract) -> bytes:
    """Convert the fitted ``Pipeline([("pre", ...), ("model", ...)])`` to a serialized ONNX model."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    _register_xgboost()
    inputs = [
        (name, StringTensorType([None, 1]) if spec.type == "categorical" else FloatTensorType([None, 1]))
        for name, spec in contract.features.items()
    ]
    model = pipeline.named_steps["model"]
    if isinstance(model, Pipeline):  # logreg: scaler + classifier
        options = {id(model.named_steps["clf"]): {"zipmap": False}, id(model.named_steps["scale"]): {"div": "div"}}
    else:
        options = {id(model): {"zipmap": False}}
    onx = convert_sklearn(pipeline, initial_types=inputs, target_opset=TARGET_OPSET, options=options)
    onx.graph.name = f"tabrepro_{contract.name}"  # skl2onnx names the graph with a random uuid: same model, same bytes
    # skl2onnx lists the opset domains in a set's order, which varies between runs (seen on the logreg graph)
    opsets = sorted((o.domain, o.version) for o in onx.opset_import)
    del onx.opset_import[:]
    for domain, version in opsets:
        onx.opset_import.add(domain=domain, version=version)
    return onx.SerializeToString()


def frame_to_records(frame: pd.DataFrame, contract: DataContract) -> list[dict[str, Any]]:
    """Parsed rows as the service's validated records: NaN becomes None."""
    features = frame[contract.feature_names].astype(object)
    return features.where(features.notna(), None).to_dict(orient="records")


def check_parity(p_pipeline: np.ndarray, p_onnx: np.ndarray, *, threshold: float, tolerance: float) -> dict[str, Any]:
    """Max |Δp| and label flips at ``threshold``; raise ``PackagingError`` past the tolerance or on any flip."""
    diff = float(np.max(np.abs(p_pipeline - p_onnx)))
    flips = int(np.sum((p_pipeline >= threshold) != (p_onnx >= threshold)))
    report = {"max_abs_diff": diff, "label_flips": flips, "rows": len(p_onnx), "tolerance": tolerance}
    if diff > tolerance or flips:
        raise PackagingError(
            f"ONNX and the fitted pipeline disagree on the test split: max |Δp| {diff:.3g} "
            f"(tolerance {tolerance:g}), {flips} label flip(s) at threshold {threshold:.4f}; nothing was built"
        )
    return report


def single_row_latency(session: Any, records: list[dict[str, Any]], contract: DataContract) -> dict[str, float]:
    """In-process latency of one row, feeds built from a dict each time (what the service does), in µs."""
    for record in records[:50]:  # warm-up: first runs allocate
        session.run(["probabilities"], feeds_from_records([record], contract))
    timings = []
    for record in records:
        started = time.perf_counter()
        session.run(["probabilities"], feeds_from_records([record], contract))
        timings.append((time.perf_counter() - started) * 1e6)
    return {
        "p50_us": round(float(np.percentile(timings, 50)), 1),
        "p99_us": round(float(np.percentile(timings, 99)), 1),
        "rows": len(timings),
    }
