"""The search space from config, its validation before any trial, and a reproducible search."""

from __future__ import annotations

import re

import numpy as np
import optuna
import pytest

from tabrepro.config.params import ModelParams, TuneParams, read_section
from tabrepro.errors import ConfigError
from tabrepro.training.search import check_search, open_storage, run_search, suggest

XGB = {"name": "xgboost", "params": {"n_estimators": 200, "max_depth": 3}, "early_stopping_rounds": 10}
TUNE = {"n_trials": 4, "cv_folds": 3, "n_startup_trials": 2}


def _model(**space: dict) -> ModelParams:
    return read_section({"model": {**XGB, "search_space": space}}, "model", ModelParams)


@pytest.fixture
def xy() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(240, 4)).astype(np.float32)
    y = (x[:, 0] - x[:, 1] + rng.normal(size=240) > 0).astype(int)
    return x, y


@pytest.mark.parametrize(
    ("dimension", "message"),
    [
        ({"distribution": "int", "low": 5, "high": 5}, "empty or inverted range"),
        ({"distribution": "float", "low": 0.9, "high": 0.1}, "empty or inverted range"),
        ({"distribution": "log_float", "low": 0, "high": 1}, "must be positive"),
        ({"distribution": "categorical"}, "non-empty 'choices'"),
        ({"distribution": "int", "low": 1}, "needs 'low' and 'high'"),
        ({"distribution": "normal", "low": 1, "high": 2}, "distribution"),
        ({"distribution": "int", "low": 1, "high": 3, "stepp": 1}, "stepp: unknown key"),
    ],
)
def test_bad_dimension_names_the_key(dimension, message):
    with pytest.raises(ConfigError, match=r"model\.search_space\.max_depth") as err:
        _model(max_depth=dimension)
    assert message in str(err.value)


def test_unknown_hyperparameter_in_search_space():
    model = _model(max_dept={"distribution": "int", "low": 2, "high": 5})
    with pytest.raises(ConfigError, match=r"model\.search_space: unknown hyper-parameter\(s\) \['max_dept'\]"):
        check_search(model, TuneParams(**TUNE))


@pytest.mark.parametrize(("key", "value"), [("n_trials", -1), ("cv_folds", 1), ("timeout", 0)])
def test_bad_tune_params_name_the_key(key, value):
    with pytest.raises(ConfigError, match=rf"tune\.{key}"):
        read_section({"tune": {**TUNE, key: value}}, "tune", TuneParams)


def test_storage_that_cannot_be_opened_names_the_key(tmp_path):
    tune = TuneParams(**TUNE, storage=f"sqlite:///{tmp_path}/missing/dir/study.db")
    with pytest.raises(ConfigError, match=r"tune\.storage: cannot open"):
        open_storage(tune, "")


def test_suggest_covers_every_distribution():
    model = _model(
        max_depth={"distribution": "int", "low": 2, "high": 6},
        learning_rate={"distribution": "log_float", "low": 0.01, "high": 0.3},
        subsample={"distribution": "float", "low": 0.5, "high": 1.0},
        grow_policy={"distribution": "categorical", "choices": ["depthwise", "lossguide"]},
    )
    fixed = {"max_depth": 4, "learning_rate": 0.05, "subsample": 0.7, "grow_policy": "lossguide"}
    assert suggest(optuna.trial.FixedTrial(fixed), model.search_space) == fixed


def _search(model: ModelParams, tune: TuneParams, xy, seed: int = 3):
    return run_search(model, tune, *xy, storage=optuna.storages.InMemoryStorage(), study_name="s", seed=seed, n_jobs=1)


def test_same_seed_same_best_params(xy):
    model = _model(
        max_depth={"distribution": "int", "low": 2, "high": 6},
        learning_rate={"distribution": "log_float", "low": 0.02, "high": 0.3},
    )
    first, study = _search(model, TuneParams(**TUNE), xy)
    second, _ = _search(model, TuneParams(**TUNE), xy)
    assert first.params == second.params
    assert first.cv_mean == second.cv_mean
    assert len(study.trials) == 4
    assert first.completed + first.pruned == 4
    # the configured params are tried first, so the search is never worse than config
    assert study.trials[0].params["max_depth"] == 3


def test_zero_trials_means_the_configured_params(xy):
    model = _model(max_depth={"distribution": "int", "low": 2, "high": 6})
    result, study = _search(model, TuneParams(**{**TUNE, "n_trials": 0}), xy)
    assert study is None
    assert result.params == model.params
    assert result.completed == 0
    assert 0.5 < result.cv_mean <= 1.0
    assert result.best_rounds is not None


@pytest.mark.parametrize("family", ["logreg", "random_forest"])
def test_other_families_search(family, xy):
    space = {
        "logreg": {"C": {"distribution": "log_float", "low": 0.01, "high": 10}},
        "random_forest": {"max_depth": {"distribution": "int", "low": 2, "high": 6}},
    }[family]
    params = {"logreg": {"max_iter": 500}, "random_forest": {"n_estimators": 20}}[family]
    model = ModelParams(name=family, params=params, search_space=space)
    result, _ = _search(model, TuneParams(**TUNE), xy)
    assert set(space) <= set(result.params)
    assert result.best_rounds is None


def test_a_timeout_that_binds_fails_the_search(xy):
    """Under load a timeout lets fewer trials run, and so changes the result: refused, not recorded as normal."""
    model = _model(max_depth={"distribution": "int", "low": 2, "high": 6})
    tune = TuneParams(**{**TUNE, "n_trials": 200, "timeout": 0.001})
    with pytest.raises(ConfigError) as err:
        _search(model, tune, xy)
    expected = r"params\.yaml: tune\.timeout: the search ran out of its 0\.001 s budget after \d of 200 trials"
    assert re.search(expected, message := str(err.value))
    assert "Set tune.timeout: null" in message


def test_a_search_that_runs_every_trial_says_the_budget_did_not_bind(xy):
    model = _model(max_depth={"distribution": "int", "low": 2, "high": 6})
    result, _ = _search(model, TuneParams(**{**TUNE, "timeout": 600}), xy)
    assert result.requested == 4 and result.completed + result.pruned == 4
    assert result.budget_bound is False


def test_the_default_budget_is_counted_in_trials_only(params):
    assert TuneParams.model_validate(params["tune"]).timeout is None


def test_the_configured_params_are_checked_before_trial_0():
    model = read_section(
        {"model": {**XGB, "params": {**XGB["params"], "subsample": 1.5}, "search_space": {}}}, "model", ModelParams
    )
    with pytest.raises(ConfigError, match=r"params\.yaml: model\.params\.subsample: expected a number in \(0, 1\]"):
        check_search(model, TuneParams(**TUNE))


def test_a_worker_of_the_last_seed_wraps_instead_of_overflowing(xy):
    """Seeds are checked to lie in [0, 2**32 - 1]; a tune worker adds its number, which must not leave that range
    (numpy refused seed 2**32 inside the sampler: an exit 3 after the params had been accepted)."""
    model = _model(max_depth={"distribution": "int", "low": 2, "high": 6})
    tune = TuneParams(**{**TUNE, "n_trials": 2})
    storage = optuna.storages.InMemoryStorage()
    result, study = run_search(model, tune, *xy, storage=storage, study_name="s", seed=2**32 - 1, n_jobs=1, worker=1)
    assert study is not None and len(study.trials) == 2
    assert result.completed + result.pruned == 2
