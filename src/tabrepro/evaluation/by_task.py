"""The evaluation of a regression or a multiclass model, end to end but for the files: scores with CIs against the
baselines on the same rows, segments, fairness slices, the leakage alarm and the gate's verdict, plus the plot
rows and the per-row predictions. ``tabrepro.stages.evaluate`` reads the inputs and writes what this returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tabrepro.artefacts import ModelMeta, MulticlassMetrics, MulticlassScores, RegressionMetrics, RegressionScores
from tabrepro.config.params import EvaluateParams
from tabrepro.config.precision import rounded_tree
from tabrepro.contract.policy import Policy
from tabrepro.contract.spec import DataContract
from tabrepro.evaluation.fairness import fairness_slices
from tabrepro.evaluation.multiclass import multiclass_baselines, score_multiclass
from tabrepro.evaluation.regression import regression_baselines, score_regression
from tabrepro.evaluation.task_figures import Points, multiclass_points, regression_points
from tabrepro.evaluation.task_gate import judge_task_gate
from tabrepro.evaluation.task_leakage import single_feature_scores
from tabrepro.evaluation.task_segments import task_segment_metrics
from tabrepro.training.modeling import predict_output


@dataclass(frozen=True)
class TaskEvaluation:
    record: RegressionMetrics | MulticlassMetrics
    output: np.ndarray  # the model's test output (predict_output)
    points: Points
    predictions: pd.DataFrame
    single_feature: dict[str, float]


@dataclass(frozen=True)
class Splits:
    """The featurized matrices and targets of train and test, and the prepared test rows (raw columns)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    test_rows: pd.DataFrame
    prepared: dict[str, pd.DataFrame]


def evaluate_task(
    model: Any,
    meta: ModelMeta,
    contract: DataContract,
    splits: Splits,
    params: EvaluateParams,
    policy: Policy,
    *,
    decimals: int,
) -> TaskEvaluation:
    """Everything ``evaluate`` records for a regression or multiclass target, every number rounded to
    ``decimals`` places; the gate judges the numbers as written."""
    task, s = contract.target.task, splits
    output = predict_output(model, s.x_test, task=task)
    scored = _scores(model, contract, s, output, params)
    single = rounded_tree(single_feature_scores(s.prepared["train"], s.prepared["test"], contract), decimals)
    top = next(iter(single))
    statistic = "r2" if task == "regression" else "roc_auc_ovr"
    scored["leakage"] = {"max_single_feature": top, "statistic": statistic, "value": single[top]}
    scored = rounded_tree(scored, decimals)
    if task == "regression":
        judged: RegressionScores | MulticlassScores = RegressionScores.model_validate(scored)
        record: RegressionMetrics | MulticlassMetrics = RegressionMetrics(
            **dict(judged),
            gate=judge_task_gate(judged, policy.gate, decimals=decimals),
            model=meta.family,
            pipeline_sha256=meta.sha256,
        )
        points = regression_points(s.y_test, output, decimals=decimals)
    else:
        judged = MulticlassScores.model_validate(scored)
        record = MulticlassMetrics(
            **dict(judged),
            gate=judge_task_gate(judged, policy.gate, decimals=decimals),
            model=meta.family,
            pipeline_sha256=meta.sha256,
        )
        classes = contract.target.labels
        points = multiclass_points(s.y_test, output, classes, bins=params.calibration_bins, decimals=decimals)
    return TaskEvaluation(record, output, points, _predictions(contract, s, output), single)


def _scores(
    model: Any, contract: DataContract, s: Splits, output: np.ndarray, params: EvaluateParams
) -> dict[str, Any]:
    task, boot, classes = contract.target.task, params.bootstrap, contract.target.labels
    if task == "regression":
        scored = score_regression(s.y_test, output, regression_baselines(s.x_train, s.y_train, s.x_test), boot)
    else:
        baselines = multiclass_baselines(s.x_train, s.y_train, s.x_test, n_classes=len(classes))
        scored = score_multiclass(s.y_test, output, baselines, boot, classes=classes, bins=params.calibration_bins)
    scored["segments"] = task_segment_metrics(
        s.test_rows,
        s.y_test,
        output,
        task=task,
        columns=contract.segments,
        n_classes=len(classes),
        min_rows=params.segment_min_rows,
    )
    scored["fairness"] = fairness_slices(
        s.test_rows, s.y_test, output, task=task, columns=contract.sensitive, classes=classes, boot=boot
    )
    return scored


def _predictions(contract: DataContract, s: Splits, output: np.ndarray) -> pd.DataFrame:
    """One row per test row: its key, target and the model's output (regression ``prediction``; multiclass the
    ``label`` and ``probability__<class>`` per class, in the contract's order)."""
    frame = pd.DataFrame({contract.key_column: s.test_rows[contract.key_column].to_numpy(), "target": s.y_test})
    if contract.target.task == "regression":
        frame["prediction"] = output
        return frame
    classes = contract.target.labels
    frame["label"] = np.asarray(classes, dtype=object)[output.argmax(axis=1)]
    for k, c in enumerate(classes):
        frame[f"probability__{c}"] = output[:, k]
    return frame
