"""``model: auto`` on a small sample: tune searches every family on one set of folds, reports the choice, and train
fits the chosen family with its own config; ``model=<family>`` (as ``dvc exp run -S`` composes it) pins one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tabrepro.artefacts import ModelMeta, TuneChoice, TuneMetrics, read_artefact
from tabrepro.config.compose import compose_config
from tabrepro.config.params import FeaturesParams, ModelParams, PathsParams, SplitParams, TrainParams, TuneParams
from tabrepro.contract.spec import load_contract
from tabrepro.errors import ConfigError
from tabrepro.io.staging import read_json
from tabrepro.stages import featurize, prepare, train, tune
from tabrepro.training.search import folds_digest, make_folds, read_search_data
from tests.conftest import REPO, write_sample

SMALL_TUNE = TuneParams(n_trials=3, cv_folds=3, n_startup_trials=2)
CANDIDATES = {
    "logreg": {
        "name": "logreg",
        "params": {"C": 1.0, "max_iter": 500},
        "search_space": {"C": {"distribution": "log_float", "low": 0.01, "high": 10}},
    },
    "random_forest": {
        "name": "random_forest",
        "params": {"n_estimators": 40, "max_depth": 6},
        "search_space": {"min_samples_leaf": {"distribution": "int", "low": 1, "high": 20}},
    },
    "xgboost": {
        "name": "xgboost",
        "early_stopping_rounds": 20,
        "params": {"n_estimators": 300, "learning_rate": 0.1, "max_depth": 3},
        "search_space": {"max_depth": {"distribution": "int", "low": 2, "high": 5}},
    },
}


def _auto(*families: str, **xgboost: object) -> ModelParams:
    candidates = {f: CANDIDATES[f] for f in families}
    if "xgboost" in candidates:
        candidates["xgboost"] = {**candidates["xgboost"], **xgboost}
    return ModelParams.model_validate({"name": "auto", "candidates": candidates})


@pytest.fixture
def featurized(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, params: dict) -> tuple[Path, dict]:
    """1,200 raw Telco rows, prepared and featurized in ``tmp_path`` (the working folder); returns it and params."""
    p = write_sample(tmp_path, params, rows=1200, seed=5)
    monkeypatch.chdir(tmp_path)
    paths, contract = PathsParams.model_validate(p["paths"]), load_contract(p["data"])
    prepare.run(paths, contract, SplitParams.model_validate(p["split"]))
    featurize.run(paths, contract, FeaturesParams.model_validate(p["features"]))
    return tmp_path, p


def _numbers_in_mappings_only(value: object, key: str = "") -> None:
    """What a DVC metrics file may hold: nested mappings of numbers, strings, booleans and nulls (no lists)."""
    assert not isinstance(value, list), f"{key}: a list in a metrics file"
    if isinstance(value, dict):
        for k, v in value.items():
            _numbers_in_mappings_only(v, f"{key}.{k}")


def test_auto_searches_every_family_reports_the_choice_and_train_fits_it(featurized):
    work, p = featurized
    paths, contract = PathsParams.model_validate(p["paths"]), load_contract(p["data"])
    model = _auto("logreg", "random_forest", "xgboost")
    tune.run(paths, contract, model, SMALL_TUNE, TrainParams(), seed=1)
    train.run(paths, contract, model, TrainParams(), seed=1)

    reports = Path(paths.tune_reports)
    raw = read_json(reports / "metrics.json")
    _numbers_in_mappings_only(raw)
    metrics, choice = (
        read_artefact(reports / "metrics.json", TuneMetrics),
        read_artefact(reports / "choice.json", TuneChoice),
    )
    best = read_json(paths.best_params)
    assert metrics.selection == "auto" and set(metrics.families) == {"logreg", "random_forest", "xgboost"}
    assert metrics.model == choice.model == best["model"] and choice.reason.startswith(f"{metrics.model}: ")
    assert metrics.families[metrics.best_family].diff_to_best == 0
    for family, cv in metrics.families.items():
        assert cv.n_trials_complete + cv.n_trials_pruned == 3
        folds = choice.families[family]
        assert len(folds.fold_scores) == 3 and cv.cv_roc_auc_mean == pytest.approx(sum(folds.fold_scores) / 3, abs=1e-5)
        assert cv.within_one_se == folds.within_one_se == (cv.diff_to_best <= cv.diff_se)
    _, y = read_search_data(paths.features, contract)
    assert choice.folds_sha256 == folds_digest(make_folds(y, k=3, seed=1))  # the folds every family was scored on
    trials = pd.read_csv(Path(paths.tune_study) / "trials.csv")
    assert trials.groupby("family").size().to_dict() == {"logreg": 3, "random_forest": 3, "xgboost": 3}

    meta = read_artefact(Path(paths.model) / "meta.json", ModelMeta)
    assert meta.family == metrics.model and dict(meta.hyperparameters) == best["params"]
    assert (meta.best_iteration is not None) == (meta.family == "xgboost")  # early stopping is xgboost's own
    assert not list(work.glob(".staging-*"))


@pytest.mark.parametrize("rounds", [20, None])
def test_train_takes_the_chosen_familys_own_config(featurized, rounds):
    """Early stopping comes from the chosen candidate's section: on with its rounds, off without them."""
    _, p = featurized
    paths, contract = PathsParams.model_validate(p["paths"]), load_contract(p["data"])
    model = _auto("xgboost", early_stopping_rounds=rounds)
    tune.run(paths, contract, model, TuneParams(n_trials=0, cv_folds=3), TrainParams(), seed=1)
    train.run(paths, contract, model, TrainParams(), seed=1)
    meta = read_artefact(Path(paths.model) / "meta.json", ModelMeta)
    assert meta.family == "xgboost" and (meta.best_iteration is not None) == (rounds is not None)
    with pytest.raises(ConfigError, match=r"holds params for 'xgboost', but model\.candidates are \['logreg'\]"):
        train.run(paths, contract, _auto("logreg"), TrainParams(), seed=1)


def test_model_logreg_pins_the_family_as_dvc_exp_run_composes_it(featurized):
    """``-S model=logreg``: DVC composes conf/ with the override into params.yaml; the stages then search and train
    logistic regression only."""
    work, p = featurized
    composed = compose_config(REPO / "conf", ["model=logreg", "tune.n_trials=2", "tune.cv_folds=3"])
    assert composed["model"]["name"] == "logreg" and "candidates" not in composed["model"]
    (work / "params.yaml").write_text(yaml.safe_dump({**composed, "data": p["data"]}, sort_keys=False))
    for stage in ("tune", "train"):
        done = subprocess.run(
            [sys.executable, "-m", f"tabrepro.stages.{stage}"], cwd=work, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
    metrics = read_artefact(work / p["paths"]["tune_reports"] / "metrics.json", TuneMetrics)
    assert metrics.selection == "pinned" and metrics.model == "logreg" and set(metrics.families) == {"logreg"}
    assert metrics.n_trials_requested == 2 and metrics.families["logreg"].within_one_se
    assert read_artefact(work / p["paths"]["model"] / "meta.json", ModelMeta).family == "logreg"
