"""The gate per task: relative defaults (no loss to the linear baseline beyond a tolerance, beat the constant
baseline, the single-feature leakage alarm), pass and fail, and the keys a task does not judge refused."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from tabrepro.artefacts import MulticlassScores, RegressionScores
from tabrepro.contract.policy import GatePolicy, check_gate_keys
from tabrepro.contract.spec import DataContract
from tabrepro.evaluation.task_gate import judge_task_gate
from tabrepro.evaluation.task_leakage import single_feature_scores

CI = {"lo": 0.0, "hi": 0.0}
BOOT = {"n": 100, "seed": 1, "level": 0.95}
POINT = {"rmse": 2.0, "mae": 1.5, "r2": 0.8, "mape": 0.1}


def _regression(ridge_ci: tuple[float, float], mean_ci: tuple[float, float], r2: float = 0.3, **extra: Any):
    return RegressionScores.model_validate(
        {
            **POINT,
            **{f"{m}_ci": CI for m in ("rmse", "mae", "r2")},
            "n": 100,
            "target_mean": 10.0,
            "vs_baselines": {
                "ridge": {
                    "rmse_diff": sum(ridge_ci) / 2,
                    "rmse_diff_ci": dict(zip(("lo", "hi"), ridge_ci, strict=True)),
                },
                "mean": {"rmse_diff": sum(mean_ci) / 2, "rmse_diff_ci": dict(zip(("lo", "hi"), mean_ci, strict=True))},
            },
            "baselines": {"mean": {**POINT, "rmse": 4.0}, "median": POINT, "ridge": POINT},
            "bootstrap": BOOT,
            "segments": {},
            "leakage": {"max_single_feature": "logwage", "statistic": "r2", "value": r2},
            "fairness": {},
            **extra,
        }
    )


def test_a_regression_model_that_ties_ridge_and_beats_the_mean_passes():
    verdict = judge_task_gate(_regression((-0.1, 0.01), (-2.5, -1.5)), GatePolicy())
    assert verdict.passed and set(verdict.checks) == {"max_loss_to_linear", "beat_constant", "max_single_feature_r2"}


@pytest.mark.parametrize(
    ("ridge_ci", "mean_ci", "r2", "failed"),
    [
        ((0.1, 0.3), (-2.0, -1.0), 0.3, "max_loss_to_linear"),  # worse than ridge by > 1 % of its RMSE (2.0)
        ((-0.1, 0.0), (-0.5, 0.2), 0.3, "beat_constant"),  # not surely better than the mean predictor
        ((-0.1, 0.0), (-2.0, -1.0), 0.97, "max_single_feature_r2"),  # one feature explains the target
    ],
)
def test_each_regression_criterion_fails_by_name(ridge_ci, mean_ci, r2, failed):
    verdict = judge_task_gate(_regression(ridge_ci, mean_ci, r2), GatePolicy())
    assert not verdict.passed and [n for n, c in verdict.checks.items() if not c.passed] == [failed]
    assert verdict.reasons[0].startswith(failed)


def test_a_loss_to_ridge_within_the_tolerance_passes():
    # lower end +0.01 of a 2.0 RMSE: 0.5 % < 1 %
    assert judge_task_gate(_regression((0.01, 0.2), (-2.0, -1.0)), GatePolicy()).passed


def test_a_ratio_of_written_metrics_is_judged_and_written_rounded():
    # -0.00431 / 3.0 = -0.001436666...: a ratio carries every digit of the float unless rounded like the metrics
    metrics = _regression((-0.00431, 0.01), (-2.0, -1.0), baselines={"mean": POINT, "median": POINT,
                          "ridge": {**POINT, "rmse": 3.0}})  # fmt: skip
    assert judge_task_gate(metrics, GatePolicy()).checks["max_loss_to_linear"].value == -0.001437
    assert judge_task_gate(metrics, GatePolicy(), decimals=3).checks["max_loss_to_linear"].value == -0.001


def test_max_fairness_gap_judges_the_largest_gap_when_set():
    column = {"groups": {}, "gaps": {"mae": 0.8}, "gaps_ci": {"mae": None}, "gate_gap": 0.8}
    metrics = _regression((-0.1, 0.0), (-2.0, -1.0), fairness={"sex": column})
    assert "max_fairness_gap" not in judge_task_gate(metrics, GatePolicy()).checks  # off by default
    verdict = judge_task_gate(metrics, GatePolicy(max_fairness_gap=0.5))
    assert not verdict.passed and "'sex'" in verdict.reasons[0]


def _multiclass(logistic_ci: tuple[float, float], prior_ci: tuple[float, float], auc: float = 0.7):
    point = {"log_loss": 0.5, "accuracy": 0.8, "f1_macro": 0.7, "f1_weighted": 0.8, "roc_auc_ovr": 0.9}
    return MulticlassScores.model_validate(
        {
            **point,
            **{f"{m}_ci": CI for m in point},
            "ece": 0.05,
            "n": 100,
            "per_class": {},
            "vs_baselines": {
                "logistic": {
                    "log_loss_diff": 0.0,
                    "log_loss_diff_ci": dict(zip(("lo", "hi"), logistic_ci, strict=True)),
                },
                "prior": {"log_loss_diff": -0.5, "log_loss_diff_ci": dict(zip(("lo", "hi"), prior_ci, strict=True))},
            },
            "baselines": {"prior": {**point, "log_loss": 1.1}, "logistic": point},
            "bootstrap": BOOT,
            "segments": {},
            "leakage": {"max_single_feature": "bill", "statistic": "roc_auc_ovr", "value": auc},
            "fairness": {},
        }
    )


def test_multiclass_gate_passes_and_fails_on_its_criteria():
    assert judge_task_gate(_multiclass((-0.02, 0.01), (-0.7, -0.4)), GatePolicy()).passed
    lost = judge_task_gate(_multiclass((0.05, 0.1), (-0.7, -0.4)), GatePolicy())
    assert [n for n, c in lost.checks.items() if not c.passed] == ["max_loss_to_linear"]
    leaked = judge_task_gate(_multiclass((-0.02, 0.01), (-0.7, -0.4), auc=0.99), GatePolicy())
    assert "'bill' alone" in leaked.reasons[0]


def test_a_key_the_task_does_not_judge_is_refused_by_name():
    with pytest.raises(ValueError, match=r"policy\.gate\.min_roc_auc: not a criterion of a regression target"):
        check_gate_keys(GatePolicy(min_roc_auc=0.8), "regression")
    with pytest.raises(ValueError, match=r"policy\.gate\.max_single_feature_r2"):
        check_gate_keys(GatePolicy(max_single_feature_r2=0.5), "binary")
    check_gate_keys(GatePolicy(min_roc_auc=None, beat_majority=False), "regression")  # switching off is harmless
    check_gate_keys(GatePolicy(max_fairness_gap=0.1), "multiclass")


def _contract(task: dict[str, Any], features: dict[str, Any]) -> DataContract:
    return DataContract(name="t", source="t.csv", target=task, features=features)


def test_the_leakage_alarm_names_a_log_of_the_target_and_a_class_copy():
    rng = np.random.default_rng(0)
    wage = np.exp(rng.normal(4.5, 0.4, 600))
    frame = pd.DataFrame({"wage": wage, "logwage": np.log(wage), "age": rng.integers(18, 80, 600)})
    frame["edu"] = rng.choice(["a", "b"], 600)
    features = {"logwage": {"type": "numeric"}, "age": {"type": "numeric"}}
    features["edu"] = {"type": "categorical", "values": ["a", "b"]}
    scores = single_feature_scores(
        frame[:400], frame[400:], _contract({"column": "wage", "task": "regression"}, features)
    )
    assert next(iter(scores)) == "logwage" and scores["logwage"] > 0.95 and scores["age"] < 0.1
    frame["species"] = rng.integers(0, 3, 600)
    frame["copy"] = np.array(["x", "y", "z"])[frame["species"]]
    features = {"copy": {"type": "categorical", "values": ["x", "y", "z"]}, "age": {"type": "numeric"}}
    target = {"column": "species", "task": "multiclass", "classes": ["p", "q", "r"]}
    scores = single_feature_scores(frame[:400], frame[400:], _contract(target, features))
    assert scores["copy"] == pytest.approx(1.0) and scores["age"] < 0.65
