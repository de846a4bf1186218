"""One ONNX graph of the whole fitted pipeline (preprocessor + model), and the proof that it equals it.

Conversion traps handled here (measured, see DESIGN.md): one graph input per contract feature (float32 for
numbers and booleans, string for categoricals), ``target_opset={"": 17, "ai.onnx.ml": 3}``, ZipMap off, and the
StandardScaler of linear models converted with ``div`` so that it divides by the scale exactly as scikit-learn.

``to_tensor_onnx`` writes a second graph of the same pipeline, with the same inputs and outputs, for GPU providers:
its *front part* is exactly the nodes that read a string tensor (the categorical inputs' one-hot encoders and the
column gathers before them: strings live on the CPU); every other node, from the imputers through the model to
the probabilities, is a plain ``ai.onnx`` op (``tabrepro.training.tensor_trees``), which ONNX Runtime's CUDA
provider implements.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
from onnx import TensorProto, helper, numpy_helper
from sklearn.pipeline import Pipeline

from tabrepro.artefacts import AnyParity, GraphReport, Latency, Parity, ServingGraph, sha256_bytes
from tabrepro.config.precision import significant
from tabrepro.contract.spec import DataContract
from tabrepro.onnxrt.feeds import feeds_from_records
from tabrepro.onnxrt.placement import MODEL_FILE, TENSOR_FILE
from tabrepro.onnxrt.session import CPU, GPU_PROVIDERS, create_session
from tabrepro.training.onnx_parity import (
    PackagingError,
    multiclass_parity,
    output_name,
    regression_parity,
    score_of,
)
from tabrepro.training.tensor_trees import TensorExportError, model_nodes

log = logging.getLogger(__name__)

TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}


PREDICTION = "prediction"  # a regression graph's one output, (n, 1) float32


@cache
def _register_xgboost() -> None:
    from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )
    from xgboost import XGBClassifier, XGBRegressor

    update_registered_converter(
        XGBClassifier,
        "XGBoostXGBClassifier",
        calculate_linear_classifier_output_shapes,
        convert_xgboost,
        options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
    )
    update_registered_converter(
        XGBRegressor, "XGBoostXGBRegressor", calculate_linear_regressor_output_shapes, convert_xgboost
    )


def _graph_inputs(contract: DataContract) -> list[tuple[str, Any]]:
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    return [
        (name, StringTensorType([None, 1]) if spec.type == "categorical" else FloatTensorType([None, 1]))
        for name, spec in contract.features.items()
    ]


def to_onnx(pipeline: Pipeline, contract: DataContract) -> bytes:
    """Convert the fitted ``Pipeline([("pre", ...), ("model", ...)])`` to a serialized ONNX model.

    Outputs per task: classification ``label`` (n,) int64, the class index, and ``probabilities`` (n, K) float32
    in the contract's class order (ZipMap off); regression ``prediction`` (n, 1) float32."""
    from skl2onnx import convert_sklearn

    _register_xgboost()
    inputs = _graph_inputs(contract)
    model = pipeline.named_steps["model"]
    regression = contract.target.task == "regression"
    options = _converter_options(model, regression=regression)
    onx = convert_sklearn(pipeline, initial_types=inputs, target_opset=TARGET_OPSET, options=options)
    if regression:
        _rename_output(onx, onx.graph.output[0].name, PREDICTION)
    data: bytes = _fixed_names(onx, f"tabrepro_{contract.name}").SerializeToString()  # protobuf has no stubs here
    return data


def _converter_options(model: Any, *, regression: bool) -> dict[int, dict[str, Any]]:
    """skl2onnx options: ZipMap off for classifiers, the linear models' scaler dividing as scikit-learn does."""
    if isinstance(model, Pipeline):  # linear: scaler + classifier (logreg) or regressor (ridge)
        scaler = {id(model.named_steps["scale"]): {"div": "div"}}
        return scaler if regression else {id(model.named_steps["clf"]): {"zipmap": False}} | scaler
    return {} if regression else {id(model): {"zipmap": False}}


def _rename_output(onx: onnx.ModelProto, old: str, new: str) -> None:
    """Rename the graph output ``old`` (skl2onnx calls a regressor's ``variable``) to ``new``."""
    for node in onx.graph.node:
        node.output[:] = [new if name == old else name for name in node.output]
        node.input[:] = [new if name == old else name for name in node.input]
    for output in onx.graph.output:
        if output.name == old:
            output.name = new


def _fixed_names(onx: onnx.ModelProto, name: str) -> onnx.ModelProto:
    """Same model, same bytes: skl2onnx names the graph with a random uuid and lists the opset domains in a
    set's order, which varies between runs (seen on the logreg graph)."""
    onx.graph.name = name
    opsets = sorted((o.domain, o.version) for o in onx.opset_import)
    del onx.opset_import[:]
    for domain, version in opsets:
        onx.opset_import.add(domain=domain, version=version)
    return onx


def to_tensor_onnx(pipeline: Pipeline, contract: DataContract) -> bytes:
    """The fitted pipeline as a graph whose nodes after the string encoders are all plain ``ai.onnx`` ops:
    the preprocessor as skl2onnx writes it with its ``Imputer`` nodes rewritten (IsNaN + Where), then the model
    as tensor ops. Same inputs and outputs as ``to_onnx``'s graph (``label`` and ``probabilities``; regression
    ``prediction``). ``TensorExportError`` for what it cannot write (categorical splits, other objectives)."""
    from skl2onnx import convert_sklearn

    onx = convert_sklearn(pipeline.named_steps["pre"], initial_types=_graph_inputs(contract), target_opset=TARGET_OPSET)
    graph = onx.graph
    features = graph.output[0].name
    nodes = [new for node in graph.node for new in _plain_imputer(node, graph.initializer)]
    del graph.node[:]
    graph.node.extend(nodes)
    task = contract.target.task
    tail, initializers = model_nodes(pipeline.named_steps["model"], features, task=task)
    graph.node.extend(tail)
    graph.initializer.extend(initializers)
    del graph.output[:]
    graph.output.extend(_tensor_outputs(task, len(contract.target.labels)))
    for opset in onx.opset_import:  # skl2onnx picks the lowest opset its own nodes need; the tail needs 17
        if opset.domain in ("", "ai.onnx"):
            opset.version = TARGET_OPSET[""]
    onx = _fixed_names(onx, f"tabrepro_{contract.name}_tensor")
    outside = [f"{n.domain}.{n.op_type} ({n.name})" for n in numeric_nodes(onx) if n.domain not in ("", "ai.onnx")]
    if outside:
        raise TensorExportError(f"tensor graph: ops outside ai.onnx after the string encoders: {outside}")
    onnx.checker.check_model(onx, full_check=True)
    data: bytes = onx.SerializeToString()  # protobuf has no stubs here
    return data


def _tensor_outputs(task: str, n_classes: int) -> list[onnx.ValueInfoProto]:
    if task == "regression":
        return [helper.make_tensor_value_info(PREDICTION, TensorProto.FLOAT, [None, 1])]
    return [
        helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
        helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, n_classes]),
    ]


def _plain_imputer(node: onnx.NodeProto, initializers: Any) -> list[onnx.NodeProto]:
    """``ai.onnx.ml.Imputer`` (NaN -> one value per column) as ``Where(IsNaN(x), values, x)``; other nodes as is."""
    if (node.domain, node.op_type) != ("ai.onnx.ml", "Imputer"):
        return [node]
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if not np.isnan(attrs.get("replaced_value_float", np.nan)) or "imputed_value_floats" not in attrs:
        raise TensorExportError(f"Imputer {node.name}: only NaN replaced by float values is written as tensor ops")
    values = np.asarray(attrs["imputed_value_floats"], dtype=np.float32).reshape(1, -1)
    fill = f"{node.name}_values"
    initializers.append(numpy_helper.from_array(values, fill))
    isnan = helper.make_node("IsNaN", [node.input[0]], [f"{node.name}_isnan"], name=f"{node.name}_isnan")
    where = helper.make_node("Where", [isnan.output[0], fill, node.input[0]], [node.output[0]], name=node.name)
    return [isnan, where]


def front_nodes(onx: onnx.ModelProto) -> list[onnx.NodeProto]:
    """The graph's front part: the nodes that read a string tensor (a string graph input, or a string made from
    one, e.g. a column gathered from it), the encoders included: what must run where strings live."""
    front = _front_positions(onx)
    return [n for i, n in enumerate(onx.graph.node) if i in front]


def numeric_nodes(onx: onnx.ModelProto) -> list[onnx.NodeProto]:
    """Every node but the front part: everything downstream of the string encoders, numeric inputs included."""
    front = _front_positions(onx)
    return [n for i, n in enumerate(onx.graph.node) if i not in front]


def _front_positions(onx: onnx.ModelProto) -> set[int]:
    inferred = onnx.shape_inference.infer_shapes(onx).graph
    known = [*inferred.input, *inferred.value_info, *inferred.output]
    strings = {v.name for v in known if v.type.tensor_type.elem_type == TensorProto.STRING}
    return {i for i, n in enumerate(onx.graph.node) if strings.intersection(n.input)}


def frame_to_records(frame: pd.DataFrame, contract: DataContract) -> list[dict[str, Any]]:
    """Parsed rows as the service's validated records: NaN becomes None."""
    features = frame[contract.feature_names].astype(object)
    records: list[dict[str, Any]] = features.where(features.notna(), None).to_dict(orient="records")
    return records


def check_parity(
    p_pipeline: np.ndarray, p_onnx: np.ndarray, *, threshold: float, tolerance: float, graph: str = "ONNX"
) -> Parity:
    """Max |Δp|, and label flips at ``threshold`` among the rows whose pipeline probability is farther from it than
    ``tolerance``; raise ``PackagingError`` (naming ``graph``) past the tolerance or on any such flip.

    A row within the tolerance of the threshold (``near_threshold``, counted in the report) may fall on either side
    in float32 (ONNX) and float64 (scikit-learn) while the two agree to the tolerance: its side is not compared.
    Outside that band a flip needs |Δp| above the tolerance, so the two checks are one promise."""
    diff = float(np.max(np.abs(p_pipeline - p_onnx)))
    near = np.abs(p_pipeline - threshold) <= tolerance
    flipped = (p_pipeline >= threshold) != (p_onnx >= threshold)
    flips = int(np.sum(flipped & ~near))
    within = int(np.sum(near))
    if diff > tolerance or flips:
        raise PackagingError(
            f"{graph} and the fitted pipeline disagree on the test split: max |Δp| {diff:.3g} "
            f"(tolerance {tolerance:g}), {flips} label flip(s) at threshold {threshold:.4f} among the rows farther "
            f"from it than the tolerance ({within} within it, not compared); nothing was built"
        )
    return Parity(
        max_abs_diff=significant(diff),  # its last digits are float32 noise: written to 2 significant digits
        label_flips=flips,
        near_threshold=within,
        rows=len(p_onnx),
        tolerance=tolerance,
    )


def single_row_latency(session: ort.InferenceSession, records: list[dict[str, Any]], contract: DataContract) -> Latency:
    """In-process latency of one row, feeds built from a dict each time (what the service does), in µs."""
    outputs = [output_name(contract.target.task)]
    for record in records[:50]:  # warm-up: first runs allocate
        session.run(outputs, feeds_from_records([record], contract))
    timings = []
    for record in records:
        started = time.perf_counter()
        session.run(outputs, feeds_from_records([record], contract))
        timings.append((time.perf_counter() - started) * 1e6)
    return Latency(
        p50_us=round(float(np.percentile(timings, 50)), 1),
        p99_us=round(float(np.percentile(timings, 99)), 1),
        rows=len(timings),
    )


def batch_throughput(
    session: ort.InferenceSession, feeds: dict[str, np.ndarray], *, repeats: int = 5, output: str = "probabilities"
) -> float:
    """Rows per second of one ``session.run`` over ``feeds`` (the median of ``repeats`` runs, after one warm-up)."""
    session.run([output], feeds)
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        session.run([output], feeds)
        timings.append(time.perf_counter() - started)
    rows = len(next(iter(feeds.values())))
    return round(rows / float(np.median(timings)), 1)


def choose_graphs(
    p50_us: dict[str, float], rows_per_second: dict[str, float], cpu_graph: str = "measured"
) -> dict[str, str]:
    """Provider -> graph file. GPU providers get the tensor graph, the only one whose trees they can run. The CPU
    gets ``cpu_graph`` (``package.cpu_graph``); with ``"measured"`` it keeps ``model.onnx`` unless the tensor graph
    is faster both for one row (p50) and in a batch. A configured graph measured slower both ways is logged."""
    tensor_faster = (
        p50_us[TENSOR_FILE] < p50_us[MODEL_FILE] and rows_per_second[TENSOR_FILE] > rows_per_second[MODEL_FILE]
    )
    faster = TENSOR_FILE if tensor_faster else MODEL_FILE
    chosen = faster if cpu_graph == "measured" else cpu_graph
    other = TENSOR_FILE if chosen == MODEL_FILE else MODEL_FILE
    if p50_us[other] < p50_us[chosen] and rows_per_second[other] > rows_per_second[chosen]:
        log.warning(
            "package.cpu_graph: %s serves on the CPU but %s measured faster here (p50 %.1f vs %.1f us, %.0f vs %.0f "
            "rows/s); set package.cpu_graph to change it",
            chosen, other, p50_us[other], p50_us[chosen], rows_per_second[other], rows_per_second[chosen],
        )  # fmt: skip
    return {CPU: chosen} | dict.fromkeys(GPU_PROVIDERS, TENSOR_FILE)


@dataclass
class CheckedGraphs:
    """Both graphs of the pipeline, each proven equal to it on the test split and timed on the CPU provider."""

    files: dict[str, bytes]  # file name -> serialized graph
    probabilities: dict[str, np.ndarray]  # file name -> its scores on the test split (``onnx_parity.score_of``)
    reports: dict[str, GraphReport]
    serving: dict[str, ServingGraph]  # provider -> the graph it runs (the manifest's ``graphs``)


def check_graphs(
    pipeline: Pipeline,
    contract: DataContract,
    records: list[dict[str, Any]],
    p_pipeline: np.ndarray,
    *,
    threshold: float | None,
    tolerance: float,
    latency_rows: int,
    cpu_graph: str = "measured",
) -> CheckedGraphs:
    """Build ``model.onnx`` and ``model_tensor.onnx``; gate each on parity (``PackagingError`` naming the graph);
    measure single-row latency and batch throughput of each on the CPU provider; give the CPU ``cpu_graph``
    (see ``choose_graphs``) and every GPU provider the tensor graph."""
    task = contract.target.task
    files = {MODEL_FILE: to_onnx(pipeline, contract)} | _tensor_file(pipeline, contract)
    feeds = feeds_from_records(records, contract)
    probabilities, parity, latency, batch = {}, {}, {}, {}
    for name, data in files.items():
        session = create_session(data, [CPU])
        probabilities[name] = score_of(session.run([output_name(task)], feeds)[0], task=task)
        what = f"{name} ({'tensor ops' if name == TENSOR_FILE else 'skl2onnx'} graph)"
        parity[name] = _parity(task, p_pipeline, probabilities[name], threshold, tolerance=tolerance, graph=what)
        latency[name] = single_row_latency(session, records[:latency_rows], contract)
        batch[name] = batch_throughput(session, feeds, output=output_name(task))
    if TENSOR_FILE not in files:  # a model the tensor graph cannot write (logged): model.onnx serves everywhere
        return _checked(files, probabilities, parity, latency, batch, {CPU: MODEL_FILE})
    chosen = choose_graphs({name: latency[name].p50_us for name in files}, batch, cpu_graph)
    return _checked(files, probabilities, parity, latency, batch, chosen)


def _tensor_file(pipeline: Pipeline, contract: DataContract) -> dict[str, bytes]:
    """``{model_tensor.onnx: bytes}``; empty for a non-binary model the tensor graph refuses (logged): binary
    refusals are errors, as before."""
    try:
        return {TENSOR_FILE: to_tensor_onnx(pipeline, contract)}
    except TensorExportError as exc:
        if contract.target.task == "binary":
            raise
        log.warning("%s not built (model.onnx serves on every provider): %s", TENSOR_FILE, exc)
        return {}


def _parity(
    task: str, expected: np.ndarray, actual: np.ndarray, threshold: float | None, *, tolerance: float, graph: str
) -> AnyParity:
    if task == "regression":
        return regression_parity(expected, actual, tolerance=tolerance, graph=graph)
    if task == "multiclass":
        return multiclass_parity(expected, actual, tolerance=tolerance, graph=graph)
    if threshold is None:
        raise PackagingError("a binary model needs its threshold for the parity gate")
    return check_parity(expected, actual, threshold=threshold, tolerance=tolerance, graph=graph)


def _checked(
    files: dict[str, bytes],
    probabilities: dict[str, np.ndarray],
    parity: dict[str, AnyParity],
    latency: dict[str, Latency],
    batch: dict[str, float],
    chosen: dict[str, str],
) -> CheckedGraphs:
    reports = {
        name: GraphReport(
            sha256=sha256_bytes(data),
            size_bytes=len(data),
            parity=parity[name],
            latency_single_row=latency[name],
            batch_rows_per_second=batch[name],
            serves_on=tuple(p for p, f in chosen.items() if f == name),
        )
        for name, data in files.items()
    }
    serving = {p: ServingGraph(file=f, sha256=reports[f].sha256) for p, f in chosen.items()}
    return CheckedGraphs(files=files, probabilities=probabilities, reports=reports, serving=serving)


__all__ = ["PackagingError"]
