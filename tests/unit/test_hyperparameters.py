"""Every family's hyper-parameters are checked against its allowed types and ranges before any trial or fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tabrepro.config.compose import compose_config
from tabrepro.config.params import ModelParams, TuneParams
from tabrepro.errors import ConfigError
from tabrepro.training.hyperparameters import FAMILIES, admits, check_model_section
from tabrepro.training.modeling import build_model
from tabrepro.training.search import check_search

REPO = Path(__file__).resolve().parents[2]
TUNE = TuneParams(n_trials=3, cv_folds=3)


def _model(family: str, params: dict, space: dict | None = None) -> ModelParams:
    return ModelParams.model_validate({"name": family, "params": params, "search_space": space or {}})


def _refused(model: ModelParams) -> str:
    with pytest.raises(ConfigError) as err:
        check_search(model, TUNE)
    return str(err.value)


@pytest.mark.parametrize(
    ("family", "params", "message"),
    [
        ("xgboost", {"reg_alpha": -1}, "model.params.reg_alpha: expected a number >= 0, or null, got -1"),
        ("xgboost", {"n_estimators": 0}, "model.params.n_estimators: expected an integer >= 1, or null, got 0"),
        ("xgboost", {"n_estimators": 2.5}, "model.params.n_estimators: expected an integer >= 1"),
        ("xgboost", {"learning_rate": 0}, "model.params.learning_rate: expected a number in (0, 1]"),
        ("xgboost", {"max_depth": "deep"}, "model.params.max_depth: expected an integer >= 0, or null, got 'deep'"),
        ("xgboost", {"grow_policy": "leafwise"}, "model.params.grow_policy: expected 'depthwise', or 'lossguide'"),
        ("xgboost", {"subsample": float("nan")}, "model.params.subsample: expected a number in (0, 1]"),
        ("xgboost", {"subsample": True}, "model.params.subsample"),
        ("logreg", {"C": 0}, "model.params.C: expected a number > 0, got 0"),
        ("logreg", {"class_weight": "auto"}, "model.params.class_weight: expected null, or 'balanced', got 'auto'"),
        ("logreg", {"max_iter": 0}, "model.params.max_iter: expected an integer >= 1, got 0"),
        ("random_forest", {"max_depth": 0}, "model.params.max_depth: expected an integer >= 1, or null, got 0"),
        ("random_forest", {"min_samples_split": 1}, "model.params.min_samples_split: expected an integer >= 2"),
        ("random_forest", {"max_features": 1.5}, "model.params.max_features"),
        ("random_forest", {"criterion": "mse"}, "model.params.criterion"),
    ],
)
def test_a_value_out_of_range_names_the_full_key(family, params, message):
    assert f"params.yaml: {message}" in _refused(_model(family, params))


def test_a_searched_hyperparameter_with_a_bad_configured_value_is_refused_not_replaced():
    space = {"subsample": {"distribution": "float", "low": 0.5, "high": 1.0}}
    text = _refused(_model("xgboost", {"subsample": 1.5}, space))
    assert "params.yaml: model.params.subsample: expected a number in (0, 1], or null, got 1.5" in text


def test_every_problem_is_reported_at_once():
    text = _refused(_model("xgboost", {"reg_alpha": -1, "n_estimators": 0, "max_dept": 3}))
    assert "model.params.reg_alpha" in text and "model.params.n_estimators" in text
    assert "model.params: unknown hyper-parameter(s) ['max_dept'] for xgboost" in text


@pytest.mark.parametrize(
    ("name", "key"), [("random_state", "top-level `seed`"), ("n_jobs", "train.n_jobs"), ("eval_metric", "fixed")]
)
def test_names_set_elsewhere_say_where(name, key):
    assert key in _refused(_model("xgboost", {name: 1}))


@pytest.mark.parametrize(
    ("family", "space", "message"),
    [
        ("xgboost", {"subsample": {"distribution": "float", "low": 0.5, "high": 1.5}}, "range [0.5, 1.5] reaches"),
        ("xgboost", {"reg_alpha": {"distribution": "float", "low": -1, "high": 1}}, "search_space.reg_alpha"),
        ("xgboost", {"n_estimators": {"distribution": "int", "low": 0, "high": 10}}, "range [0, 10] reaches"),
        ("xgboost", {"max_depth": {"distribution": "float", "low": 2, "high": 6}}, "samples fractional numbers"),
        (
            "xgboost",
            {"grow_policy": {"distribution": "categorical", "choices": ["depthwise", "leafwise"]}},
            "search_space.grow_policy.choices: ['leafwise'] not allowed",
        ),
        ("logreg", {"C": {"distribution": "float", "low": 0, "high": 10}}, "search_space.C: the range [0, 10]"),
        ("random_forest", {"max_features": {"distribution": "float", "low": 0.5, "high": 2}}, "range [0.5, 2]"),
        ("random_forest", {"min_samples_split": {"distribution": "int", "low": 1, "high": 5}}, "range [1, 5]"),
    ],
)
def test_search_bounds_outside_the_allowed_range_are_refused(family, space, message):
    text = _refused(_model(family, {}, space))
    assert "params.yaml: model.search_space." in text and message in text


def test_logreg_solver_and_l1_ratio_that_a_fit_refuses_together():
    text = _refused(_model("logreg", {"l1_ratio": 0.5}))
    assert "model.params.solver: solver 'newton-cholesky' takes l1_ratio 0 only" in text
    space = {"l1_ratio": {"distribution": "float", "low": 0.0, "high": 1.0}}
    text = _refused(_model("logreg", {"solver": "liblinear"}, space))
    assert "model.params.solver: solver 'liblinear' takes l1_ratio 0 or 1 only" in text
    assert "model.search_space.l1_ratio gives [0, 1]" in text
    check_search(_model("logreg", {"solver": "saga"}, space), TUNE)  # saga mixes L1 and L2: accepted


def test_integers_are_judged_as_counts_where_a_family_takes_both():
    rule = FAMILIES["random_forest"]["max_features"]
    assert admits(rule, 1) and admits(rule, 1.0) and admits(rule, "sqrt") and admits(rule, None)
    assert not admits(rule, 0) and not admits(rule, 0.0) and not admits(rule, "all")
    assert not admits(FAMILIES["random_forest"]["min_samples_split"], 1)  # a count of 1, not the fraction 1.0


@pytest.mark.parametrize("family", ["xgboost", "logreg", "random_forest"])
def test_the_shipped_configs_pass(family):
    cfg = compose_config(REPO / "conf", [f"model={family}"])["model"]
    model = ModelParams.model_validate(cfg)
    check_model_section(model.name, model.params, dict(model.search_space))


@pytest.mark.parametrize(
    ("family", "params"),
    [
        ("xgboost", {"subsample": 1.0, "learning_rate": 1.0, "max_depth": 0, "reg_alpha": 0, "n_estimators": 1}),
        ("logreg", {"C": float("inf"), "l1_ratio": 1.0, "solver": "saga", "tol": 0.0, "max_iter": 1}),
        ("random_forest", {"min_samples_split": 1.0, "min_samples_leaf": 0.4, "max_features": 1, "max_depth": 1}),
    ],
)
def test_values_on_the_edges_of_the_ranges_fit(family, params):
    """The ranges are not stricter than the libraries: the allowed edge values really fit."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    y = (x[:, 0] > 0).astype(int)
    model = build_model(family, params, seed=0).fit(x, y)
    assert model.predict_proba(x).shape == (60, 2)


def test_the_model_factory_that_train_uses_refuses_before_fitting():
    with pytest.raises(ConfigError, match=r"params\.yaml: model\.params\.subsample: expected a number in \(0, 1\]"):
        build_model("xgboost", {"subsample": 1.5, "n_estimators": 10}, seed=0)
