"""The model-choice rule (``model: auto``): the best mean CV ROC-AUC, unless a simpler family is within one SE of it
fold by fold; and every family scored on the same folds."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from sklearn.metrics import roc_auc_score

from tabrepro.config.params import ModelParams, TuneParams, read_section
from tabrepro.config.precision import rounded
from tabrepro.errors import ConfigError
from tabrepro.training.modeling import build_model, fit_for_prediction
from tabrepro.training.search import check_search, folds_digest, make_folds, study_names_for
from tabrepro.training.selection import SIMPLEST_FIRST, choose_family, paired_difference, search_families

BASE = np.array([0.83, 0.85, 0.84, 0.86, 0.87])


def test_paired_difference_is_the_mean_and_se_of_the_fold_differences():
    diff, se = paired_difference([0.81, 0.82, 0.83], [0.80, 0.80, 0.80])
    assert diff == pytest.approx(0.02)
    assert se == round(0.01 / math.sqrt(3), 6)  # at the declared precision (6 places by default)


def test_a_clear_winner_is_chosen():
    choice = choose_family({"logreg": BASE - 0.02, "random_forest": BASE - 0.01, "xgboost": BASE})
    assert choice.family == choice.best == "xgboost"
    assert choice.comparisons["logreg"].diff == pytest.approx(0.02)
    assert choice.comparisons["logreg"].se == pytest.approx(0, abs=1e-12)
    assert "every simpler family trails by more than one SE" in choice.reason


def test_a_tie_within_one_se_picks_the_simpler_family():
    # xgboost leads by 0.001 on average, but the fold differences swing by +-0.01: well within one SE
    logreg = BASE - np.array([0.011, -0.009, 0.010, -0.010, 0.003])
    choice = choose_family({"logreg": logreg, "xgboost": BASE})
    assert choice.best == "xgboost" and choice.family == "logreg"
    c = choice.comparisons["logreg"]
    assert 0 < c.diff <= c.se and c.within_one_se
    assert "logreg: within one standard error of the best mean CV ROC-AUC (xgboost" in choice.reason


def test_a_loser_beyond_one_se_is_not_picked():
    # a small but steady lead (Telco: xgboost wins every fold): beyond one SE, so the more complex family stays
    logreg = BASE - np.array([0.004, 0.006, 0.005, 0.005, 0.006])
    choice = choose_family({"logreg": logreg, "xgboost": BASE})
    assert choice.family == "xgboost"
    assert not choice.comparisons["logreg"].within_one_se


def test_the_simplest_of_several_within_one_se_wins():
    noise = np.array([0.01, -0.01, 0.01, -0.01, 0.0])
    scores = {"xgboost": BASE + 0.001, "random_forest": BASE - noise, "logreg": BASE + noise[::-1] * 0.9}
    choice = choose_family(scores)
    assert choice.best == "xgboost" and choice.family == "logreg"
    assert choice.comparisons["random_forest"].within_one_se and choice.comparisons["logreg"].within_one_se


def test_a_more_complex_family_within_one_se_of_the_best_is_not_preferred():
    noise = np.array([0.01, -0.01, 0.01, -0.01, 0.0])
    choice = choose_family({"logreg": BASE, "xgboost": BASE - noise - 0.001})
    assert choice.family == choice.best == "logreg"
    assert choice.comparisons["xgboost"].within_one_se  # within noise, but not simpler: no reason to switch


def test_equal_means_count_the_simpler_family_as_the_best():
    choice = choose_family({"xgboost": BASE, "random_forest": BASE[::-1]})
    assert choice.best == "random_forest" and choice.family == "random_forest"


def test_one_family_is_a_choice_of_one():
    choice = choose_family({"xgboost": BASE})
    assert choice.family == "xgboost" and "the only family searched" in choice.reason


@pytest.mark.parametrize(
    ("scores", "message"),
    [
        ({"logreg": BASE, "xgboost": BASE[:4]}, "same folds"),
        ({"svm": BASE}, "unknown family"),
        ({}, "no family"),
    ],
)
def test_scores_that_cannot_be_compared_are_refused(scores, message):
    with pytest.raises(ValueError, match=message):
        choose_family(scores)


def test_simplicity_order_covers_every_family():
    assert sorted(SIMPLEST_FIRST) == sorted(("xgboost", "logreg", "random_forest"))


# --- the auto section and the search over families ---------------------------------------------------------------

AUTO = {
    "name": "auto",
    "candidates": {
        "logreg": {"name": "logreg", "params": {"max_iter": 500}, "search_space": {}},
        "random_forest": {"name": "random_forest", "params": {"n_estimators": 20, "max_depth": 4}},
        "xgboost": {
            "name": "xgboost",
            "params": {"n_estimators": 200, "learning_rate": 0.1, "max_depth": 2},
            "early_stopping_rounds": 10,
        },
    },
}


@pytest.fixture
def xy() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 4)).astype(np.float32)
    y = (x[:, 0] - x[:, 1] + rng.normal(size=300) > 0).astype(int)
    return x, y


def test_every_family_is_scored_on_the_same_folds(xy):
    x, y = xy
    model = ModelParams.model_validate(AUTO)
    tune = TuneParams(n_trials=0, cv_folds=3)
    names = {f.name: f"s-{f.name}" for f in model.families}
    found = search_families(
        model, tune, x, y, storage=optuna.storages.InMemoryStorage(), study_names=names, seed=7, n_jobs=1
    )
    folds = make_folds(y, k=3, seed=7)
    assert found.folds == folds_digest(folds)
    assert list(found.results) == ["logreg", "random_forest", "xgboost"]  # simplest first
    for family in ("logreg", "random_forest"):  # scored on exactly these folds
        params = model.family(family).params
        fits = [fit_for_prediction(build_model(family, params, seed=7), x[fit], y[fit]) for fit, _ in folds]
        expected = [
            rounded(roc_auc_score(y[held], m.predict_proba(x[held])[:, 1]))
            for m, (_, held) in zip(fits, folds, strict=True)
        ]
        assert found.results[family].fold_scores == tuple(expected)
    xgb = found.results["xgboost"]  # xgboost.cv's own folds: its per-fold scores average to its CV mean
    assert len(xgb.fold_scores) == 3 and np.mean(xgb.fold_scores) == pytest.approx(xgb.cv_mean, abs=1e-6)
    assert found.choice.family in found.results


def test_the_folds_digest_tells_folds_apart(xy):
    _, y = xy
    assert folds_digest(make_folds(y, k=3, seed=1)) == folds_digest(make_folds(y, k=3, seed=1))
    assert folds_digest(make_folds(y, k=3, seed=1)) != folds_digest(make_folds(y, k=3, seed=2))


def test_auto_searches_each_family_in_its_own_study(xy, telco_contract):
    model = ModelParams.model_validate(AUTO)
    assert study_names_for(telco_contract, model, TuneParams(n_trials=1)) == {
        f: f"telco_churn-{f}" for f in ("logreg", "random_forest", "xgboost")
    }
    named = TuneParams(n_trials=1, study_name="nightly")
    assert study_names_for(telco_contract, model, named)["xgboost"] == "nightly-xgboost"
    assert study_names_for(telco_contract, model.family("xgboost"), named) == {"xgboost": "nightly"}


def test_a_candidates_bad_hyperparameter_names_its_full_key():
    bad = {**AUTO, "candidates": {**AUTO["candidates"], "random_forest": {"name": "random_forest", "params": {"n": 1}}}}
    with pytest.raises(ConfigError, match=r"params\.yaml: model\.candidates\.random_forest\.params: unknown"):
        check_search(ModelParams.model_validate(bad), TuneParams(n_trials=0))


def test_a_candidate_without_a_search_space_is_refused_when_searching():
    with pytest.raises(ConfigError, match=r"model\.candidates\.logreg\.search_space: logreg has no search space"):
        check_search(ModelParams.model_validate(AUTO), TuneParams(n_trials=2))


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"name": "auto"}, "name: auto needs at least one of"),
        ({**AUTO, "params": {"C": 1.0}}, "not params or search_space"),
        ({"name": "auto", "candidates": {"logreg": {"name": "xgboost"}}}, "candidates.logreg.name is 'xgboost'"),
        ({"name": "logreg", "candidates": {"logreg": {"name": "logreg"}}}, "candidates applies to name: auto"),
        ({"name": "auto", "candidates": {"svm": {"name": "logreg"}}}, r"model\.candidates\.svm"),
    ],
)
def test_a_malformed_auto_section_names_the_key(section, message):
    with pytest.raises(ConfigError, match=message):
        read_section({"model": section}, "model", ModelParams)


def test_a_family_the_section_does_not_have_is_refused():
    with pytest.raises(ConfigError, match=r"no family 'xgboost' here \(model\.name 'logreg'"):
        ModelParams(name="logreg").family("xgboost")
