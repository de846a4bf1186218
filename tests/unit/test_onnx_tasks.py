"""ONNX per task (issue 21): the whole pipeline of every regression and multiclass family as one graph, and as the
tensor graph where it can be written, equal to scikit-learn / XGBoost on tiny synthetic data; the parity gate
per task failing where it must."""

from __future__ import annotations

import numpy as np
import onnx
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from tabrepro.contract.spec import load_contract
from tabrepro.contract.table import parse_table
from tabrepro.onnxrt.placement import MODEL_FILE, TENSOR_FILE
from tabrepro.training.features import build_preprocessor
from tabrepro.training.modeling import build_model, predict_output
from tabrepro.training.onnx_export import check_graphs, frame_to_records, numeric_nodes, to_onnx
from tabrepro.training.onnx_parity import PackagingError, multiclass_parity, regression_parity
from tests.conftest import TINY_CONTRACT

CLASSES = ["Adelie", "Chinstrap", "Gentoo"]
TARGETS = {
    "regression": {"column": "y", "task": "regression", "unit": "EUR"},
    "multiclass": {"column": "y", "task": "multiclass", "classes": CLASSES},
}
FAMILIES = {"regression": ["ridge", "random_forest", "xgboost"], "multiclass": ["logreg", "random_forest", "xgboost"]}
PARAMS = {"ridge": {}, "logreg": {}, "random_forest": {"n_estimators": 20, "max_depth": 5}, "xgboost": {}}


def _fitted(task: str, family: str, tiny_raw: pd.DataFrame):
    contract = load_contract({**TINY_CONTRACT, "target": TARGETS[task]})
    rng = np.random.default_rng(0)
    raw = pd.concat([tiny_raw] * 40, ignore_index=True).assign(id=lambda d: [f"r{i}" for i in range(len(d))])
    age = rng.integers(18, 90, size=len(raw))
    raw["age"] = age.astype(str)
    raw.loc[::7, "spend"] = " "
    if task == "regression":
        raw["y"] = [f"{v:.2f}" for v in 1000 + 20 * age + rng.normal(0, 50, len(raw))]
    else:
        raw["y"] = [CLASSES[i] for i in np.digitize(age + rng.normal(0, 8, len(raw)), [40, 65])]
    frame, _ = parse_table(raw, contract)
    y = frame["y"].to_numpy(float) if task == "regression" else frame["y"].map(CLASSES.index).to_numpy(np.int16)
    model = build_model(family, PARAMS[family], task=task, seed=0, n_classes=3)  # as prepared: the class index
    return Pipeline([("pre", build_preprocessor(contract)), ("model", model)]).fit(frame, y), frame, contract


@pytest.mark.parametrize(("task", "family"), [(t, f) for t, fs in FAMILIES.items() for f in fs])
def test_every_family_of_every_task_exports_with_parity(task, family, tiny_raw):
    pipeline, frame, contract = _fitted(task, family, tiny_raw)
    expected = predict_output(pipeline, frame, task=task)
    graphs = check_graphs(
        pipeline, contract, frame_to_records(frame, contract), expected, threshold=None, tolerance=1e-5, latency_rows=10
    )
    outputs = [o.name for o in onnx.load_from_string(graphs.files[MODEL_FILE]).graph.output]
    assert outputs == (["prediction"] if task == "regression" else ["label", "probabilities"])
    assert "ZipMap" not in {n.op_type for n in onnx.load_from_string(graphs.files[MODEL_FILE]).graph.node}
    assert TENSOR_FILE in graphs.files  # every family of every task has its tensor graph (softprob included)
    for name, scores in graphs.probabilities.items():
        assert scores.shape == expected.shape
        if task == "regression":
            assert np.max(np.abs(scores - expected)) / np.max(np.abs(expected)) <= 1e-5, name
        else:
            assert np.max(np.abs(scores - expected)) <= 1e-5 and (scores.argmax(1) == expected.argmax(1)).all(), name
    tensor = onnx.load_from_string(graphs.files[TENSOR_FILE])
    assert {n.domain for n in numeric_nodes(tensor)} == {""}
    assert [o.name for o in tensor.graph.output] == outputs
    assert graphs.serving["CUDAExecutionProvider"].file == TENSOR_FILE


def test_the_regression_graph_is_named_and_deterministic(tiny_raw):
    pipeline, _, contract = _fitted("regression", "xgboost", tiny_raw)
    assert to_onnx(pipeline, contract) == to_onnx(pipeline, contract)


def test_regression_parity_is_relative_to_the_largest_prediction():
    y = np.array([1000.0, -2000.0, 10.0])
    ok = regression_parity(y, y + 0.015, tolerance=1e-5, graph="g")  # 0.015 / 2000 = 7.5e-6
    assert ok.scale == 2000.0 and ok.max_rel_diff == pytest.approx(7.5e-6)
    with pytest.raises(PackagingError, match=r"g and the fitted pipeline disagree.*over the largest \|prediction\|"):
        regression_parity(y, y + 0.03, tolerance=1e-5, graph="g")


def test_multiclass_parity_counts_near_ties_and_fails_on_a_flip():
    p = np.array([[0.5, 0.3, 0.2], [0.4, 0.4 - 1e-6, 0.2 + 1e-6], [0.1, 0.2, 0.7]])
    q = p.copy()
    q[1] = [0.4 - 1e-6, 0.4, 0.2 + 1e-6]  # a near tie may flip
    parity = multiclass_parity(p, q, tolerance=1e-5, graph="g")
    assert parity.label_flips == 0 and parity.near_tie == 1 and parity.max_abs_diff == pytest.approx(1e-6)
    with pytest.raises(PackagingError, match=r"max \|Δp\| 0\.2 .*1 argmax flip"):
        multiclass_parity(p, p[:, [1, 0, 2]], tolerance=1e-5, graph="g")
