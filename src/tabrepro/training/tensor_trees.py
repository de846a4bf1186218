"""Fitted models as plain ``ai.onnx`` tensor ops (no ``ai.onnx.ml``), so that a GPU execution provider can run them.

ONNX Runtime's CUDA provider has no kernel for ``TreeEnsembleClassifier``; this module rewrites the fitted model
with Gather / GatherElements / Less / IsNaN / And / Or / ReduceSum / Sigmoid, which it does have.

Trees use the *tree traversal* strategy by default: every node of every tree in flat arrays (children of a node
renumbered to be adjacent, so the next node is ``left[i] + went_right``), one unrolled step per level of the
deepest tree, each step moving every (row, tree) pair one level down. Leaves point to themselves (threshold NaN:
``x < NaN`` is false, and their missing direction is "right"), so a pair that reached its leaf stays there. The
*GEMM* strategy (decide every split at once, then per tree a MatMul by its path matrix) is there too, exact as
well, for a GPU to be measured on. Feature values are gathered, never multiplied by a selection matrix:
``NaN * 0`` is NaN and would poison every node.

Split semantics are reproduced exactly in float32 (NaN handled explicitly: IsNaN and the node's default):
- XGBoost (read from its JSON model): ``x < threshold`` goes left; NaN goes to the node's default direction;
  the margin is the sum of the leaves plus ``logit(base_score)``, and ``binary:logistic`` applies the sigmoid.
- scikit-learn trees: ``x <= t`` (float32 ``x`` against a float64 ``t``) is rewritten as ``x < t'`` with ``t'``
  the next float32 above the largest float32 not greater than ``t``; NaN follows ``missing_go_to_left``; the
  probability is the mean over trees of each leaf's class fraction, summed in float64.
- Logistic regression (``StandardScaler`` + ``LogisticRegression``) is computed in float64, as scikit-learn does.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from onnx import NodeProto, TensorProto, helper, numpy_helper

from tabrepro.errors import TabreproError


class TensorExportError(TabreproError, ValueError):
    """The fitted model cannot be written as plain tensor ops (an objective or split kind this module lacks)."""


@dataclass(frozen=True)
class Forest:
    """Every node of every tree, flat. ``left[i]`` is the left child (right is ``left[i] + 1``)."""

    feature: np.ndarray  # int32 (half the memory traffic of int64 on (rows, trees) tensors), 0 for leaves
    threshold: np.ndarray  # float32, go left when x < threshold; NaN for leaves
    default_left: np.ndarray  # bool: where a NaN goes
    left: np.ndarray  # int32; a leaf holds its own index - 1
    value: np.ndarray  # float32 (XGBoost margins) or float64 (class fractions): the leaf values
    roots: np.ndarray  # int32, one per tree
    depth: int  # levels to descend: the deepest tree's
    base: float | np.ndarray  # added to the sum of the leaves (a margin; one per class for softprob) ...
    scale: float  # ... after multiplying it by this (1 / n_trees for a forest's mean)
    link: str  # "sigmoid" (XGBoost logistic), "softmax" (XGBoost softprob) or "identity" (forest probabilities)


@dataclass
class _Tree:
    """One tree in its library's numbering; leaves have ``left == -1``."""

    left: list[int]
    right: list[int]
    feature: list[int]
    threshold: np.ndarray  # float32
    default_left: list[bool]
    value: np.ndarray


def xgboost_forest(model: object) -> Forest:
    """The trees of a fitted ``XGBClassifier`` or ``XGBRegressor`` (binary:logistic, multi:softprob or
    reg:squarederror; gbtree, numerical splits) from its JSON model. Softprob grows one tree per class per round
    (``tree_info`` names its class): each leaf becomes a vector, zero but for its class, and the per-class
    margins (``base_score``, one per class) go through a softmax."""
    booster = model.get_booster()  # type: ignore[attr-defined]
    learner = json.loads(booster.save_raw("json"))["learner"]
    objective = learner["objective"]["name"]
    booster_name = learner["gradient_booster"]["name"]
    if objective not in _XGB_LINKS or booster_name != "gbtree":
        raise TensorExportError(
            f"XGBoost {booster_name}/{objective}: only gbtree with binary:logistic, multi:softprob or "
            "reg:squarederror is written as tensor ops"
        )
    per_round = int(learner["learner_model_param"].get("num_class", "0") or 0) if objective == "multi:softprob" else 1
    trees = learner["gradient_booster"]["model"]["trees"]
    best = booster.attr("best_iteration")
    if best is not None:  # predict_proba uses only the rounds up to the best one
        trees = trees[: (int(best) + 1) * per_round]
    parsed = _xgboost_trees(trees)
    base = np.asarray([float(v) for v in learner["learner_model_param"]["base_score"].strip("[]").split(",")])
    link = _XGB_LINKS[objective]
    if link == "softmax":  # base_score holds each class's margin
        info = learner["gradient_booster"]["model"]["tree_info"]
        parsed = [_one_hot(tree, info[k], per_round) for k, tree in enumerate(parsed)]
        return _flatten(parsed, base=base.astype(np.float32), scale=1.0, link=link)
    base_score = float(base[0])  # "[2.65E-1]" in XGBoost 3: a probability for logistic, a value for regression
    margin = float(np.log(base_score / (1.0 - base_score))) if link == "sigmoid" else base_score
    return _flatten(parsed, base=margin, scale=1.0, link=link)


def _one_hot(tree: _Tree, cls: int, classes: int) -> _Tree:
    """``tree`` (a softprob tree of class ``cls``) with each node's value as a vector over the classes."""
    value = np.zeros((len(tree.value), classes), dtype=np.float32)
    value[:, cls] = tree.value
    return _Tree(tree.left, tree.right, tree.feature, tree.threshold, tree.default_left, value)


def _xgboost_trees(trees: list[dict[str, Any]]) -> list[_Tree]:
    parsed = []
    for k, tree in enumerate(trees):
        if any(tree["split_type"]):
            raise TensorExportError(f"XGBoost tree {k}: categorical splits are not written as tensor ops")
        parsed.append(
            _Tree(
                left=tree["left_children"],
                right=tree["right_children"],
                feature=tree["split_indices"],
                threshold=np.asarray(tree["split_conditions"], dtype=np.float32),
                default_left=[bool(d) for d in tree["default_left"]],
                value=np.asarray(tree["split_conditions"], dtype=np.float32),
            )
        )
    return parsed


_XGB_LINKS = {"binary:logistic": "sigmoid", "multi:softprob": "softmax", "reg:squarederror": "identity"}


def sklearn_forest(model: object) -> Forest:
    """The trees of a fitted ``RandomForestClassifier`` (or any bagged ensemble of decision trees): binary leaf
    values the positive class's fraction, multiclass each class's fraction (a vector per leaf); or of a
    single-output ``RandomForestRegressor`` (leaf values: the mean target of the leaf)."""
    parsed = []
    regressor = not hasattr(model, "classes_")
    for estimator in model.estimators_:  # type: ignore[attr-defined]
        tree = estimator.tree_
        if tree.n_outputs != 1:
            raise TensorExportError(f"{type(model).__name__}: only single-output trees are written as tensors")
        if regressor:
            value = tree.value[:, 0, 0].astype(np.float64)
        elif tree.value.shape[2] == 2:
            value = (tree.value[:, 0, 1] / tree.value[:, 0, :].sum(axis=1)).astype(np.float64)
        else:  # multiclass: every class's fraction, in the classes_ order
            value = (tree.value[:, 0, :] / tree.value[:, 0, :].sum(axis=1, keepdims=True)).astype(np.float64)
        parsed.append(
            _Tree(
                left=tree.children_left.tolist(),
                right=tree.children_right.tolist(),
                feature=tree.feature.tolist(),
                threshold=_float32_at_or_below_then_up(tree.threshold),
                default_left=[bool(m) for m in tree.missing_go_to_left],
                value=value,
            )
        )
    return _flatten(parsed, base=0.0, scale=1.0 / len(parsed), link="identity")


def _float32_at_or_below_then_up(threshold: np.ndarray) -> np.ndarray:
    """``t'`` with ``float32 x < t'`` exactly when ``x <= t`` (float64): the next float32 above floor32(t)."""
    t32 = threshold.astype(np.float32)
    t32 = np.where(t32.astype(np.float64) > threshold, np.nextafter(t32, np.float32(-np.inf)), t32)
    return np.nextafter(t32, np.float32(np.inf)).astype(np.float32)


def _flatten(trees: list[_Tree], *, base: float | np.ndarray, scale: float, link: str) -> Forest:
    """Renumber each tree breadth-first with siblings adjacent and concatenate them."""
    feature: list[int] = []
    threshold: list[np.floating] = []  # float32 splits; NaN at the leaves
    default_left: list[bool] = []
    left: list[int] = []
    value: list[Any] = []  # a leaf's value (a number, or a vector of class fractions), 0 elsewhere
    roots: list[int] = []
    depth = 0
    for tree in trees:
        offset = len(feature)
        roots.append(offset)
        order, new_id, level = [0], {0: offset}, {0: 0}
        for node in order:  # breadth-first; order grows as children are reached
            if tree.left[node] == -1:
                continue
            for child in (tree.left[node], tree.right[node]):
                new_id[child] = offset + len(order)
                level[child] = level[node] + 1
                order.append(child)
        for node in order:
            leaf = tree.left[node] == -1
            depth = max(depth, level[node])
            feature.append(0 if leaf else tree.feature[node])
            threshold.append(np.float32(np.nan) if leaf else tree.threshold[node])
            default_left.append(False if leaf else tree.default_left[node])
            left.append(new_id[node] - 1 if leaf else new_id[tree.left[node]])
            value.append(tree.value[node] if leaf else np.zeros_like(tree.value[0]))
    return Forest(
        feature=np.asarray(feature, dtype=np.int32),
        threshold=np.asarray(threshold, dtype=np.float32),
        default_left=np.asarray(default_left, dtype=bool),
        left=np.asarray(left, dtype=np.int32),
        value=np.asarray(value, dtype=trees[0].value.dtype if trees else np.float32),
        roots=np.asarray(roots, dtype=np.int32),
        depth=depth,
        base=base,
        scale=scale,
        link=link,
    )


class _Builder:
    """Collects nodes and initializers under one name prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix, self._n = prefix, 0
        self.nodes: list[NodeProto] = []
        self.inits: list[TensorProto] = []

    def const(self, name: str, array: np.ndarray) -> str:
        full = f"{self.prefix}{name}"
        self.inits.append(numpy_helper.from_array(np.asarray(array), full))
        return full

    def op(self, op_type: str, *inputs: str, out: str | None = None, **attrs: Any) -> str:
        """One ``op_type`` node; ``attrs`` are its ONNX attributes, of any type ``helper.make_node`` accepts."""
        self._n += 1
        output = out or f"{self.prefix}{op_type.lower()}_{self._n}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], name=f"{self.prefix}n{self._n}", **attrs))
        return output


def forest_nodes(forest: Forest, x: str, b: _Builder, *, strategy: str = "traversal") -> str:
    """Nodes computing the positive-class probability (n, 1) of ``forest`` on the float32 (n, F) tensor ``x``.

    ``strategy``: "traversal" (the default: on the CPU, 338 depth-3 trees, 8x faster than "gemm", measured) or
    "gemm" (every split at once and one batched MatMul: fewer, larger ops, which may suit a GPU better; its
    elementwise work grows as 4**depth per tree)."""
    if strategy not in ("traversal", "gemm"):
        raise TensorExportError(f"strategy {strategy!r}: expected 'traversal' or 'gemm'")
    vector = forest.value.ndim == 2  # a multiclass forest: (n, 1, K) summed, squeezed to (n, K)
    if vector and strategy == "gemm":
        raise TensorExportError("strategy 'gemm': a multiclass forest is written by traversal only")
    total = _gemm_sum(forest, x, b) if strategy == "gemm" else _traversal_sum(forest, x, b)
    if vector:
        total = b.op("Squeeze", total, b.const("squeeze_axis", np.array([1])))
    dtype = forest.value.dtype
    margin = b.op(
        "Add",
        b.op("Mul", total, b.const("scale", np.array(forest.scale, dtype))),
        b.const("base", np.array(forest.base, dtype)),
    )
    if forest.link == "softmax":
        p = b.op("Softmax", margin, axis=1)
    else:
        p = b.op("Sigmoid", margin) if forest.link == "sigmoid" else margin
    return p if dtype == np.float32 else b.op("Cast", p, to=TensorProto.FLOAT)


def _goes_left(values: str, threshold: str, default_left: str, b: _Builder) -> str:
    # x < t is false for a NaN x, so a NaN goes left exactly when its node's default is left
    missing_left = b.op("And", b.op("IsNaN", values), default_left)
    return b.op("Or", b.op("Less", values, threshold), missing_left)


def _traversal_sum(forest: Forest, x: str, b: _Builder) -> str:
    """Sum over trees of the leaf each row reaches (n, 1): one step down every tree per level."""
    feature, threshold = b.const("feature", forest.feature), b.const("threshold", forest.threshold)
    default_left, left = b.const("default_left", forest.default_left), b.const("left", forest.left)
    rows = b.op("Slice", b.op("Shape", x), b.const("zero", np.array([0])), b.const("one", np.array([1])))
    shape = b.op("Concat", rows, b.const("trees", np.array([len(forest.roots)])), axis=0)
    index = b.op("Expand", b.const("roots", forest.roots.reshape(1, -1)), shape)  # (n, trees)
    for _ in range(forest.depth):
        values = b.op("GatherElements", x, b.op("Gather", feature, index), axis=1)
        goes_left = _goes_left(values, b.op("Gather", threshold, index), b.op("Gather", default_left, index), b)
        went_right = b.op("Cast", b.op("Not", goes_left), to=TensorProto.INT32)
        index = b.op("Add", b.op("Gather", left, index), went_right)
    leaf_values = b.op("Gather", b.const("leaf_value", forest.value), index)
    return b.op("ReduceSum", leaf_values, b.const("axis1", np.array([1])))


def _gemm_sum(forest: Forest, x: str, b: _Builder) -> str:
    """Sum over trees of the leaf each row reaches (n, 1), the GEMM way: every split of every tree decided at
    once (n, trees * splits), then per tree a MatMul by its path matrix C (+1: leaf under the split's left child,
    -1: under its right) equals D (the leaf's count of left turns) for the one leaf reached. The MatMul only
    sums small integers (exact in float32 and in TF32); leaf values are multiplied elementwise, never by MatMul."""
    g = _gemm_arrays(forest)
    trees, splits, _ = g["path"].shape
    values = b.op("Gather", x, b.const("g_feature", g["feature"]), axis=1)
    goes_left = _goes_left(values, b.const("g_threshold", g["threshold"]), b.const("g_default", g["default_left"]), b)
    bits = b.op("Cast", goes_left, to=TensorProto.FLOAT)
    by_tree = b.op("Transpose", b.op("Reshape", bits, b.const("g_shape", np.array([0, trees, splits]))), perm=[1, 0, 2])
    turns = b.op("MatMul", by_tree, b.const("g_path", g["path"]))  # (trees, n, leaves)
    reached = b.op("Cast", b.op("Equal", turns, b.const("g_left_turns", g["left_turns"])), to=_ONNX[g["value"].dtype])
    leaf_values = b.op("Mul", reached, b.const("g_value", g["value"]))
    return b.op(
        "Unsqueeze",
        b.op("ReduceSum", leaf_values, b.const("g_axes", np.array([0, 2])), keepdims=0),
        b.const("axis1", np.array([1])),
    )


_ONNX = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE}


def _gemm_arrays(forest: Forest) -> dict[str, np.ndarray]:
    """Per tree, padded to the largest tree: its splits (feature, threshold, default), the path matrix C, the
    left-turn counts D (-1 for padding: never reached) and the leaf values."""
    bounds = [*forest.roots.tolist(), len(forest.feature)]
    trees = [range(start, stop) for start, stop in itertools.pairwise(bounds)]
    is_leaf = forest.left == np.arange(len(forest.left)) - 1
    splits = max(1, max(sum(not is_leaf[i] for i in t) for t in trees))
    leaves = max(sum(is_leaf[i] for i in t) for t in trees)
    path = np.zeros((len(trees), splits, leaves), dtype=np.float32)
    left_turns = np.full((len(trees), 1, leaves), -1, dtype=np.float32)
    value = np.zeros((len(trees), 1, leaves), dtype=forest.value.dtype)
    feature = np.zeros((len(trees), splits), dtype=np.int64)
    threshold = np.full((len(trees), splits), np.nan, dtype=np.float32)
    default_left = np.zeros((len(trees), splits), dtype=bool)
    for k, tree in enumerate(trees):
        split_of = {node: j for j, node in enumerate(i for i in tree if not is_leaf[i])}
        for node, j in split_of.items():
            feature[k, j], threshold[k, j] = forest.feature[node], forest.threshold[node]
            default_left[k, j] = forest.default_left[node]
        stack: list[tuple[int, list[tuple[int, int]]]] = [(tree.start, [])]
        leaf = 0
        while stack:
            node, ancestors = stack.pop()
            if is_leaf[node]:
                for j, sign in ancestors:
                    path[k, j, leaf] = sign
                left_turns[k, 0, leaf] = sum(sign == 1 for _, sign in ancestors)
                value[k, 0, leaf] = forest.value[node]
                leaf += 1
                continue
            child = int(forest.left[node])
            stack += [(child, [*ancestors, (split_of[node], 1)]), (child + 1, [*ancestors, (split_of[node], -1)])]
    return {
        "feature": feature.reshape(-1),
        "threshold": threshold.reshape(-1),
        "default_left": default_left.reshape(-1),
        "path": path,
        "left_turns": left_turns,
        "value": value,
    }


def linear_nodes(model: object, x: str, b: _Builder) -> str:
    """Nodes computing a linear pipeline in float64 from the float32 (n, F) tensor ``x``: ``StandardScaler`` then
    ``LogisticRegression`` (binary: the positive-class probability (n, 1); multinomial: the softmax (n, K)) or
    ``Ridge`` (the prediction (n, 1))."""
    steps = model.named_steps  # type: ignore[attr-defined]
    scaler, estimator = steps["scale"], steps["clf"] if "clf" in steps else steps["reg"]
    coef = np.atleast_2d(estimator.coef_).astype(np.float64)
    if coef.shape[0] != 1 and "clf" not in steps:
        raise TensorExportError("Ridge: only a single-output model is written as tensor ops")
    z = b.op("Cast", x, to=TensorProto.DOUBLE)
    if scaler.with_mean:
        z = b.op("Sub", z, b.const("mean", scaler.mean_.astype(np.float64)))
    if scaler.with_std:
        z = b.op("Div", z, b.const("scale_", scaler.scale_.astype(np.float64)))
    intercept = np.atleast_1d(estimator.intercept_).astype(np.float64)
    logit = b.op("Add", b.op("MatMul", z, b.const("coef", coef.T)), b.const("intercept", intercept))
    if "reg" in steps:
        return b.op("Cast", logit, to=TensorProto.FLOAT)
    p = b.op("Sigmoid", logit) if coef.shape[0] == 1 else b.op("Softmax", logit, axis=1)
    return b.op("Cast", p, to=TensorProto.FLOAT)


def model_nodes(
    model: object, x: str, *, prefix: str = "tensor_", strategy: str = "traversal", task: str = "binary"
) -> tuple[list[NodeProto], list[TensorProto]]:
    """Nodes and initializers from the float32 feature tensor ``x`` to the graph outputs of the ONNX pipeline, as
    skl2onnx writes them (ZipMap off): classification ``probabilities`` (n, K) float32 and ``label`` (n,) int64;
    regression ``prediction`` (n, 1) float32."""
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.pipeline import Pipeline
    from xgboost import XGBClassifier, XGBRegressor

    regressor = isinstance(model, (XGBRegressor, RandomForestRegressor)) or "reg" in getattr(model, "named_steps", {})
    if regressor != (task == "regression"):
        raise TensorExportError(f"{type(model).__name__}: not a model of a {task} target")
    b = _Builder(prefix)
    if isinstance(model, (XGBClassifier, XGBRegressor)):
        p = forest_nodes(xgboost_forest(model), x, b, strategy=strategy)
    elif isinstance(model, (RandomForestClassifier, RandomForestRegressor)):
        p = forest_nodes(sklearn_forest(model), x, b, strategy=strategy)
    elif isinstance(model, Pipeline) and set(model.named_steps) in ({"scale", "clf"}, {"scale", "reg"}):
        p = linear_nodes(model, x, b)
    else:
        raise TensorExportError(f"{type(model).__name__}: no tensor export for this model")
    if task == "regression":
        b.op("Identity", p, out="prediction")
        return b.nodes, b.inits
    classes = np.asarray(getattr(model, "classes_", [0, 1])).tolist()
    if task == "multiclass":
        if classes != list(range(len(classes))):
            raise TensorExportError(f"{type(model).__name__}: classes {classes}, expected 0..K-1")
        b.op("Identity", p, out="probabilities")
    else:
        if classes != [0, 1]:
            raise TensorExportError(f"{type(model).__name__}: classes {classes}, expected [0, 1]")
        b.op("Concat", b.op("Sub", b.const("one_f", np.array(1.0, np.float32)), p), p, axis=1, out="probabilities")
    b.op("ArgMax", "probabilities", axis=1, keepdims=0, out="label")
    return b.nodes, b.inits
