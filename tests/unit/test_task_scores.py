"""Scores per task after deployment: the columns `tabrepro score` writes (evaluate's predictions file's), the
graph's outputs read per task, and the distribution of the predictions that drift watches (regression: quantile
bins of the predictions; multiclass: the predicted-class frequencies, one bin per class)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd
import pyarrow as pa
import pytest
from onnx import TensorProto, helper

from tabrepro.artefacts import ScoreReference
from tabrepro.batch.outputs import empty_output, score_columns, score_fields
from tabrepro.config.params import DriftParams
from tabrepro.contract.spec import DataContract
from tabrepro.errors import DataError
from tabrepro.monitoring.drift import DriftAccumulator, compute_reference_stats, compute_score_reference
from tabrepro.monitoring.inputs import iter_log
from tabrepro.monitoring.report import ScoreDrift
from tabrepro.monitoring.scores import compute_task_score_reference, graph_output

CLASSES = ["Adelie", "Chinstrap", "Gentoo"]
TARGETS: dict[str, dict[str, Any]] = {
    "binary": {"column": "y", "positive": "Yes", "negative": "No"},
    "multiclass": {"column": "y", "task": "multiclass", "classes": CLASSES},
    "regression": {"column": "y", "task": "regression", "min": 0},
}


def _contract(task: str) -> DataContract:
    return DataContract(name="t", source="t.csv", target=TARGETS[task], features={"x": {"type": "numeric"}})


def _identity_session(output: str, width: int) -> ort.InferenceSession:
    """A graph whose ``output`` is its input ``x`` (rows, width): the scores are what the test feeds."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], [output])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, width])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, [None, width])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def test_the_columns_per_task_are_evaluates():
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]], dtype=np.float32)
    columns = score_columns(p, _contract("multiclass"), threshold=None)
    assert list(columns) == ["label", *(f"probability__{c}" for c in CLASSES)]
    assert columns["label"].to_pylist() == ["Adelie", "Gentoo"]
    assert columns["probability__Gentoo"].to_pylist() == pytest.approx([0.1, 0.6])
    regression = score_columns(np.array([1.5, 30.25], dtype=np.float32), _contract("regression"), threshold=None)
    assert list(regression) == ["prediction"] and regression["prediction"].to_pylist() == [1.5, 30.25]
    binary = score_columns(np.array([0.2, 0.3], dtype=np.float32), _contract("binary"), threshold=0.25)
    assert binary["label"].to_pylist() == [0, 1] and binary["label"].type == pa.int8()
    for task in TARGETS:  # the schema names the columns the function writes, with their types
        contract = _contract(task)
        fields = score_fields(contract)
        made = score_columns(empty_output(contract), contract, threshold=0.5)
        assert [(n, made[n].type) for n in made] == fields


def test_a_binary_model_without_its_threshold_is_refused():
    with pytest.raises(ValueError, match="threshold"):
        score_columns(np.array([0.2], dtype=np.float32), _contract("binary"), threshold=None)


def test_the_graph_output_per_task():
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]], dtype=np.float32)
    multiclass = graph_output(_identity_session("probabilities", 3), {"x": p}, task="multiclass")
    assert multiclass.shape == (2, 3) and np.array_equal(multiclass, p)
    binary = graph_output(_identity_session("probabilities", 2), {"x": p[:, :2]}, task="binary")
    assert np.array_equal(binary, p[:, 1])
    values = np.array([[3.5], [7.0]], dtype=np.float32)
    for name in ("variable", "prediction"):  # skl2onnx's name for a regressor's value, or the one given it
        regression = graph_output(_identity_session(name, 1), {"x": values}, task="regression")
        assert regression.shape == (2,) and regression.tolist() == [3.5, 7.0]


def test_the_multiclass_reference_is_the_predicted_class_frequencies():
    rng = np.random.default_rng(0)
    p = rng.dirichlet([4, 2, 1], size=500)
    reference = compute_task_score_reference(p, task="multiclass")
    ScoreReference.model_validate(reference)  # the manifest's layout
    assert reference["edges"] == [0.5, 1.5]
    expected = np.bincount(p.argmax(axis=1), minlength=3) / 500
    assert reference["fractions"] == pytest.approx(expected, abs=1e-6)
    binary = rng.uniform(size=300)
    assert compute_task_score_reference(binary, task="binary") == compute_score_reference(binary)


def _drift(task: str, reference_output: np.ndarray, current_output: np.ndarray) -> dict[str, Any]:
    contract = _contract(task)
    frame = pd.DataFrame({"x": np.random.default_rng(1).normal(size=len(current_output))})
    stats = compute_reference_stats(frame, contract, bins=10)
    accumulator = DriftAccumulator(stats, compute_task_score_reference(reference_output, task=task), contract)
    accumulator.update(frame, current_output)
    report = accumulator.report(DriftParams())
    return report


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_drift_watches_the_predictions_distribution_per_task(task):
    rng = np.random.default_rng(2)
    if task == "multiclass":
        reference, same, moved = (rng.dirichlet(a, size=1000) for a in ([4, 2, 1], [4, 2, 1], [1, 2, 4]))
    else:
        reference, same, moved = (rng.normal(m, 5, size=1000) for m in (30, 30, 40))
    steady = _drift(task, reference, same)
    assert not steady["score"]["drifted"] and steady["score"]["psi"] < 0.05
    shifted = _drift(task, reference, moved)
    assert shifted["score"]["drifted"] and shifted["score"]["psi"] > 0.5
    assert shifted["decision"]["retrain"]
    name, plural = {
        "multiclass": ("predicted class", "predicted classes"),
        "regression": ("prediction", "predictions"),
    }[task]
    assert ScoreDrift.model_validate(shifted["score"]).name == name  # the report's layout, naming what drifted
    assert any(reason.startswith(f"{plural} drifted: PSI") for reason in shifted["decision"]["reasons"])


def _log(tmp_path: Path, task: str, *outputs: dict[str, Any]) -> tuple[pd.DataFrame, np.ndarray]:
    lines = [{"served": True, "role": "primary", "model_version": "v1", "inputs": {"x": 1.0}} | o for o in outputs]
    path = tmp_path / "predictions.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    chunks = list(iter_log([path], _contract(task), role="primary", roles=Counter(), versions=Counter()))
    return chunks[0]


def test_the_prediction_log_is_read_per_task(tmp_path):
    _, predictions = _log(tmp_path, "regression", {"prediction": 42.5}, {"prediction": 7})
    assert predictions.tolist() == [42.5, 7.0]
    given = [{"Gentoo": 0.1, "Adelie": 0.7, "Chinstrap": 0.2}, {"Adelie": 0.1, "Chinstrap": 0.3, "Gentoo": 0.6}]
    _, probabilities = _log(tmp_path, "multiclass", *({"probabilities": p} for p in given))
    assert probabilities.shape == (2, 3) and probabilities[0].tolist() == [0.7, 0.2, 0.1]  # the contract's order
    with pytest.raises(DataError, match="keyed by the classes"):
        _log(tmp_path, "multiclass", {"probabilities": {"Adelie": 1.0}})
    with pytest.raises(DataError, match="'prediction' must be a finite number"):
        _log(tmp_path, "regression", {"probability": 0.5})


def _skl_session(model: Any) -> ort.InferenceSession:
    """The scikit-learn model as an ONNX graph with one float input ``x`` (the feed layout of a numeric feature)."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    options = {id(model): {"zipmap": False}} if hasattr(model, "predict_proba") else None
    graph = to_onnx(model, initial_types=[("x", FloatTensorType([None, 1]))], options=options, target_opset=17)
    return ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("task", ["regression", "multiclass"])
def test_a_real_graph_is_scored_into_the_tasks_columns(task):
    from sklearn.linear_model import LinearRegression, LogisticRegression

    from tabrepro.batch.scoring import _output_schema, _score_frame

    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 1))
    if task == "regression":
        fitted: Any = LinearRegression().fit(x, 3 * x[:, 0] + 10)
    else:
        fitted = LogisticRegression().fit(x, np.digitize(x[:, 0], [-0.5, 0.5]))
    contract = _contract(task)
    valid = pd.DataFrame({"row": np.arange(2, 12), "x": x[:10, 0]})
    model = type("Packaged", (), {"contract": contract, "threshold": None, "version": "v1"})()
    table, output = _score_frame(_skl_session(fitted), valid, model)
    assert table.schema == _output_schema(contract)
    frame = table.to_pandas()
    assert frame["row"].tolist() == list(range(2, 12)) and set(frame["model_version"]) == {"v1"}
    if task == "regression":
        assert frame["prediction"].to_numpy() == pytest.approx(fitted.predict(x[:10]), rel=1e-5)
    else:
        expected = fitted.predict_proba(x[:10])
        probabilities = frame[[f"probability__{c}" for c in CLASSES]].to_numpy()
        assert probabilities == pytest.approx(expected, abs=1e-5) and output.shape == (10, 3)
        assert frame["label"].tolist() == [CLASSES[k] for k in expected.argmax(axis=1)]


def test_a_multiclass_reference_of_other_numbers_is_refused():
    contract = _contract("multiclass")
    frame = pd.DataFrame({"x": np.random.default_rng(1).normal(size=50)})
    stats = compute_reference_stats(frame, contract, bins=10)
    top_label = compute_score_reference(np.random.default_rng(2).uniform(0.4, 1, size=200))  # not class indices
    with pytest.raises(DataError, match="not of the 3 predicted classes"):
        DriftAccumulator(stats, top_label, contract)
