"""Tree ensembles and logistic regression as plain ai.onnx tensor graphs: exact against XGBoost / scikit-learn on
random and adversarial inputs (values at, just below and just above every threshold, NaN, +-inf, float64 inputs
rounded to float32), and the whole-pipeline graph holds no ai.onnx.ml op after the string encoders."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
from onnx import TensorProto, helper
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from xgboost import XGBClassifier, XGBRegressor

from tabrepro.contract.table import parse_table
from tabrepro.training.features import build_preprocessor
from tabrepro.training.onnx_export import (
    choose_graphs,
    frame_to_records,
    front_nodes,
    numeric_nodes,
    to_onnx,
    to_tensor_onnx,
)
from tabrepro.training.tensor_trees import TensorExportError, model_nodes, xgboost_forest

F = 5


STRATEGIES = pytest.mark.parametrize("strategy", ["traversal", "gemm"])


def _session(model: object, strategy: str = "traversal", *, classes: int = 2) -> ort.InferenceSession:
    task = "binary" if classes == 2 else "multiclass"
    nodes, inits = model_nodes(model, "X", strategy=strategy, task=task)
    graph = helper.make_graph(
        nodes,
        "t",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, F])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, classes]),
        ],
        inits,
    )
    onx = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(onx, full_check=True)
    assert {n.domain for n in onx.graph.node} == {""}
    return ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])


def _data(seed: int = 0, rows: int = 600, missing: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(size=(rows, F)), 1).astype(np.float32)  # repeated values: thresholds between them
    y = ((x[:, 0] + x[:, 1] * x[:, 2] > 0) ^ (rng.random(rows) < 0.1)).astype(int)
    x[rng.random(x.shape) < missing] = np.nan
    return x, y


def _at_thresholds(thresholds: dict[int, np.ndarray], *, seed: int, rows: int = 3000) -> np.ndarray:
    """Rows whose every feature sits at a threshold, one float32 step below or above it, or is NaN."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, F)).astype(np.float32)
    for feature, values in thresholds.items():
        t = rng.choice(values, size=rows).astype(np.float32)
        step = rng.integers(-1, 2, size=rows)
        x[:, feature] = np.where(step < 0, np.nextafter(t, -np.inf), np.where(step > 0, np.nextafter(t, np.inf), t))
    x[rng.random(x.shape) < 0.1] = np.nan
    return x


def _xgb_thresholds(model: XGBClassifier) -> dict[int, np.ndarray]:
    found: dict[int, list[float]] = {}
    for tree in json.loads(model.get_booster().save_raw("json"))["learner"]["gradient_booster"]["model"]["trees"]:
        for node, feature in enumerate(tree["split_indices"]):
            if tree["left_children"][node] != -1:
                found.setdefault(feature, []).append(tree["split_conditions"][node])
    return {f: np.asarray(v, dtype=np.float32) for f, v in found.items()}


def _assert_same(session: ort.InferenceSession, x: np.ndarray, expected: np.ndarray) -> None:
    labels, probabilities = session.run(None, {"X": x.astype(np.float32)})
    np.testing.assert_array_less(np.abs(probabilities[:, 1] - expected), 1e-6 + 1e-12)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    assert (labels == (expected > 0.5)).all()


@pytest.fixture(scope="module")
def xgb() -> XGBClassifier:
    x, y = _data()
    return XGBClassifier(n_estimators=60, max_depth=5, learning_rate=0.3, base_score=0.3, n_jobs=1).fit(x, y)


@STRATEGIES
def test_xgboost_random_and_special_values(xgb, strategy):
    x, _ = _data(seed=1, rows=2000, missing=0.2)
    x[::11, 0], x[::13, 1], x[::17, 2] = np.inf, -np.inf, np.float32(3.4e38)
    forest = xgboost_forest(xgb)
    assert set(forest.default_left.tolist()) == {True, False}  # both missing directions are exercised
    _assert_same(_session(xgb, strategy), x, xgb.predict_proba(x)[:, 1])


@STRATEGIES
def test_xgboost_at_thresholds(xgb, strategy):
    x = _at_thresholds(_xgb_thresholds(xgb), seed=2)
    _assert_same(_session(xgb, strategy), x, xgb.predict_proba(x)[:, 1])


@STRATEGIES
def test_xgboost_float64_inputs_round_like_xgboost(xgb, strategy):
    thresholds = _xgb_thresholds(xgb)
    x64 = _at_thresholds(thresholds, seed=3).astype(np.float64)
    x64 += np.random.default_rng(3).choice([-1e-9, 0.0, 1e-9], size=x64.shape)  # rounds to the float32 threshold
    _assert_same(_session(xgb, strategy), x64.astype(np.float32), xgb.predict_proba(x64)[:, 1])


def test_xgboost_softprob_per_class_trees_early_stopped_and_at_thresholds():
    """multi:softprob: one tree per class per round, each class's margin (base_score) and a softmax; the rounds up
    to ``best_iteration`` only, as predict_proba; rows at every threshold, one float32 step off, and NaN."""
    x, _ = _data(seed=7, rows=3000, missing=0.1)
    y = np.digitize(np.nan_to_num(x[:, 0] + x[:, 1]), [-0.7, 0.7])  # three classes, not balanced
    fit, val = slice(0, 2000), slice(2000, None)
    model = XGBClassifier(n_estimators=80, max_depth=4, learning_rate=0.5, early_stopping_rounds=5, n_jobs=1)
    model.fit(x[fit], y[fit], eval_set=[(x[val], y[val])], verbose=False)
    assert 0 < model.best_iteration < 79  # stopped early: trees past it must be left out
    session = _session(model, classes=3)
    for rows in (_data(seed=8, missing=0.2)[0], _at_thresholds(_xgb_thresholds(model), seed=9)):
        labels, probabilities = session.run(None, {"X": rows})
        expected = model.predict_proba(rows)
        np.testing.assert_allclose(probabilities, expected, atol=2e-6)
        assert (labels == expected.argmax(axis=1)).mean() > 0.999  # ties at 1e-7 may break either way


@STRATEGIES
def test_xgboost_stumps_and_single_leaf_trees(strategy):
    x, y = _data(seed=4)
    model = XGBClassifier(n_estimators=5, max_depth=1, gamma=50.0, n_jobs=1).fit(x, y)  # gamma leaves bare roots
    forest = xgboost_forest(model)
    single_leaf = [bool(forest.left[root] == root - 1) for root in forest.roots]  # a leaf holds its index - 1
    assert forest.depth == 1 and any(single_leaf) and not all(single_leaf)
    _assert_same(_session(model, strategy), x, model.predict_proba(x)[:, 1])


@pytest.fixture(scope="module")
def forest() -> RandomForestClassifier:
    x, y = _data(seed=5)
    return RandomForestClassifier(n_estimators=25, max_depth=9, random_state=0, n_jobs=1).fit(x, y)


@STRATEGIES
def test_random_forest_random_and_at_thresholds(forest, strategy):
    thresholds = {}
    for tree in forest.estimators_:
        for f, t in zip(tree.tree_.feature, tree.tree_.threshold, strict=True):
            if f >= 0 and np.isfinite(t):  # a "missing vs the rest" split has t = inf (x <= inf is any number)
                thresholds.setdefault(int(f), []).append(t)
    # float64 thresholds themselves (sklearn compares float32(x) with them) and their float32 neighbours
    assert any(np.isinf(t.tree_.threshold).any() for t in forest.estimators_)  # that case is exercised too
    x = _at_thresholds({f: np.asarray(v) for f, v in thresholds.items()}, seed=6)
    x64 = x.astype(np.float64)
    x64[::3, 0] = np.random.default_rng(6).choice(thresholds[0], size=len(x64[::3]))
    _assert_same(_session(forest, strategy), x64.astype(np.float32), forest.predict_proba(x64)[:, 1])
    big, _ = _data(seed=7, rows=2000)
    big[::9, 3] = 1.0e30  # sklearn refuses inf (and a sum of values that overflows float32)
    _assert_same(_session(forest, strategy), big, forest.predict_proba(big)[:, 1])


def test_logistic_regression_in_float64():
    x, y = _data(seed=8, missing=0.0)
    model = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(C=0.3))]).fit(x, y)
    _assert_same(_session(model), x * 3, model.predict_proba(x * 3)[:, 1])


def test_refuses_what_it_cannot_write():
    x, y = _data(seed=9, missing=0.0)
    model = XGBClassifier(n_estimators=2, objective="binary:hinge", n_jobs=1).fit(x, y)
    with pytest.raises(TensorExportError, match="binary:hinge"):
        model_nodes(model, "X")
    with pytest.raises(TensorExportError, match="XGBRegressor: not a model of a binary target"):
        model_nodes(XGBRegressor(n_estimators=2).fit(x, y.astype(float)), "X")
    y3 = np.arange(len(y)) % 3
    forest = RandomForestClassifier(n_estimators=2, random_state=0).fit(x, y3)
    with pytest.raises(TensorExportError, match="a multiclass forest is written by traversal only"):
        model_nodes(forest, "X", task="multiclass", strategy="gemm")


@pytest.mark.parametrize(
    "model",
    [
        XGBClassifier(n_estimators=30, max_depth=3, n_jobs=1),
        RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0, n_jobs=1),
        Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]),
    ],
    ids=["xgboost", "random_forest", "logreg"],
)
def test_whole_pipeline_graph(model, tiny_contract, tiny_raw):
    raw = pd.concat([tiny_raw] * 20, ignore_index=True).assign(id=lambda d: [f"r{i}" for i in range(len(d))])
    rng = np.random.default_rng(0)
    raw["age"] = rng.integers(18, 90, size=len(raw)).astype(str)
    raw.loc[::7, "spend"] = " "
    frame, _ = parse_table(raw, tiny_contract)
    y = (frame["y"] == "yes").to_numpy(dtype=int) if frame["y"].dtype != int else frame["y"].to_numpy()
    pipeline = Pipeline([("pre", build_preprocessor(tiny_contract)), ("model", model)]).fit(frame, y)
    onx = onnx.load_from_string(to_tensor_onnx(pipeline, tiny_contract))
    # the front part reads the one categorical input (skl2onnx gathers its column, then one-hot encodes it);
    # every other node, imputers included, is ai.onnx
    front = front_nodes(onx)
    assert [n.op_type for n in front] == ["Gather", "OneHotEncoder"] and front[0].input[0] == "plan"
    numeric = numeric_nodes(onx)
    assert {n.domain for n in numeric} == {""} and len(numeric) == len(onx.graph.node) - 2
    assert Counter(n.op_type for n in numeric)["Imputer"] == 0
    reference = onnx.load_from_string(to_onnx(pipeline, tiny_contract))
    assert [i.name for i in onx.graph.input] == [i.name for i in reference.graph.input]
    assert [o.name for o in onx.graph.output] == [o.name for o in reference.graph.output] == ["label", "probabilities"]
    from tabrepro.serving.runtime import feeds_from_records

    session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    labels, probabilities = session.run(None, feeds_from_records(frame_to_records(frame, tiny_contract), tiny_contract))
    expected = pipeline.predict_proba(frame)[:, 1]
    assert np.max(np.abs(probabilities[:, 1] - expected)) <= 1e-6
    assert (labels == pipeline.predict(frame)).all()


@pytest.mark.parametrize(
    ("p50_us", "rows_per_second", "cpu_graph"),
    [
        ({"model.onnx": 20.0, "model_tensor.onnx": 50.0}, {"model.onnx": 9e4, "model_tensor.onnx": 3e4}, "model.onnx"),
        ({"model.onnx": 20.0, "model_tensor.onnx": 10.0}, {"model.onnx": 9e4, "model_tensor.onnx": 3e4}, "model.onnx"),
        (
            {"model.onnx": 20.0, "model_tensor.onnx": 10.0},
            {"model.onnx": 9e4, "model_tensor.onnx": 2e5},
            "model_tensor.onnx",
        ),
    ],
)
def test_the_cpu_keeps_the_tree_graph_unless_the_tensor_graph_is_faster_both_ways(p50_us, rows_per_second, cpu_graph):
    chosen = choose_graphs(p50_us, rows_per_second, "measured")
    assert chosen == {"CPUExecutionProvider": cpu_graph, "CUDAExecutionProvider": "model_tensor.onnx"}


@pytest.mark.parametrize("configured", ["model.onnx", "model_tensor.onnx"])
def test_a_configured_cpu_graph_is_kept_whatever_this_run_measured(configured, caplog):
    """package.cpu_graph fixed: the sealed manifest does not depend on timing; a slower choice is only logged."""
    tensor_faster = ({"model.onnx": 20.0, "model_tensor.onnx": 10.0}, {"model.onnx": 9e4, "model_tensor.onnx": 2e5})
    chosen = choose_graphs(*tensor_faster, configured)
    assert chosen == {"CPUExecutionProvider": configured, "CUDAExecutionProvider": "model_tensor.onnx"}
    assert ("model_tensor.onnx measured faster" in caplog.text) == (configured == "model.onnx")
