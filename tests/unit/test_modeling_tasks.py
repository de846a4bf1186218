"""Issue 21: every family fits, predicts and round-trips per task; folds, objective and the one-SE rule follow the
task; the tune and train stages run on tiny synthetic multiclass and regression feature sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from xgboost import XGBClassifier, XGBRegressor

from tabrepro.artefacts import BestParams, ModelMeta, TuneChoice, TuneMetrics, read_artefact
from tabrepro.config.params import FAMILY_TASKS, ModelParams, PathsParams, TrainParams, TuneParams
from tabrepro.contract.spec import load_contract
from tabrepro.errors import ConfigError
from tabrepro.io.staging import read_json
from tabrepro.stages import train, tune
from tabrepro.training.modeling import build_model, fit_model, load_model, predict_output, save_model
from tabrepro.training.objectives import objective_for, scoring_for
from tabrepro.training.search import make_folds, regression_strata, run_search
from tabrepro.training.selection import choose_family

SMALL = {
    "xgboost": {"n_estimators": 30, "max_depth": 2},
    "logreg": {"C": 0.5},
    "ridge": {"alpha": 1.0},
    "random_forest": {"n_estimators": 10, "max_depth": 4},
}
CASES = [(family, task) for family, tasks in FAMILY_TASKS.items() for task in tasks]


def _data(task: str, n: int = 240, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    signal = x[:, 0] + 0.5 * x[:, 1] + 0.3 * rng.normal(size=n)
    if task == "regression":
        return x, (3.0 * signal + 10.0).astype(np.float64)
    if task == "multiclass":
        return x, np.digitize(signal, np.quantile(signal, [1 / 3, 2 / 3])).astype(np.int64)
    return x, (signal > 0).astype(np.int64)


@pytest.mark.parametrize(("family", "task"), CASES)
def test_every_family_fits_predicts_and_round_trips_per_task(family, task, tmp_path):
    x, y = _data(task)
    model = build_model(family, SMALL[family], task=task, seed=0, n_classes=3 if task == "multiclass" else 2)
    fitted = fit_model(model, x[:160], y[:160], x[160:], y[160:]).model
    out = predict_output(fitted, x[160:], task=task)
    assert out.dtype == np.float64
    if task == "multiclass":
        assert out.shape == (80, 3) and np.allclose(out.sum(axis=1), 1.0)
        assert (out.argmax(axis=1) == y[160:]).mean() > 0.6  # learned something
    elif task == "binary":
        assert out.shape == (80,) and ((out > 0.5) == y[160:]).mean() > 0.7
    else:
        assert out.shape == (80,) and np.corrcoef(out, y[160:])[0, 1] > 0.8
    classes = ("a", "b", "c") if task == "multiclass" else ()
    info = {} if task == "binary" else {"task": task, "classes": classes}
    save_model(fitted, family, tmp_path / "m", **info)
    loaded, meta = load_model(tmp_path / "m")
    assert meta.task == task and meta.classes == classes
    if family == "xgboost":
        assert isinstance(loaded, XGBRegressor if task == "regression" else XGBClassifier)
    np.testing.assert_allclose(predict_output(loaded, x[160:], task=task), out, rtol=1e-6)


def test_a_binary_meta_keeps_its_keys_from_before_tasks(tmp_path):
    x, y = _data("binary")
    fitted = fit_model(build_model("logreg", {}, seed=0), x[:160], y[:160], x[160:], y[160:]).model
    save_model(fitted, "logreg", tmp_path / "m", seed=1)
    assert set(read_json(tmp_path / "m" / "meta.json")) == {"family", "file", "sha256", "seed"}


def test_multiclass_folds_are_stratified():
    _, y = _data("multiclass", n=300)
    for _, held in make_folds(y, k=5, seed=1, task="multiclass"):
        assert np.bincount(y[held], minlength=3).tolist() == [20, 20, 20]


def test_regression_folds_stratify_on_quantile_bins():
    rng = np.random.default_rng(3)
    y = np.exp(rng.normal(size=200))  # skewed: plain k-fold can leave the tail out of a fold
    strata = regression_strata(y, k=5)
    assert strata.max() + 1 == 10 and np.bincount(strata).min() >= 5  # min(10, n // k) bins, each >= k rows
    assert all(y[strata == b].max() <= y[strata == b + 1].min() for b in range(strata.max()))  # ordered bins
    folds = make_folds(y, k=5, seed=1, task="regression")
    for _, held in folds:
        assert np.bincount(strata[held], minlength=10).tolist() == [4] * 10
    assert sorted(np.concatenate([h for _, h in folds]).tolist()) == list(range(200))


def test_regression_strata_merge_tied_bins():
    y = np.array([0.0] * 30 + [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    strata = regression_strata(y, k=3)
    assert np.bincount(strata).min() >= 3 and len(make_folds(y, k=3, seed=0, task="regression")) == 3


def test_one_se_rule_follows_a_minimised_objective():
    """RMSE: lower is better. xgboost is clearly best; ridge trails by far more than one SE."""
    folds = {"ridge": [2.0, 2.1, 2.2, 2.0, 2.1], "xgboost": [1.0, 1.1, 1.0, 1.05, 1.0]}
    choice = choose_family(folds, direction="minimize", label="RMSE")
    assert choice.best == "xgboost" and choice.family == "xgboost"
    assert choice.comparisons["ridge"].diff > 0 and "best mean CV RMSE" in choice.reason
    reversed_ = choose_family(folds, direction="maximize")  # the rule read the wrong way would pick ridge
    assert reversed_.best == "ridge"


def test_one_se_rule_prefers_the_simpler_within_noise_when_minimising():
    folds = {"ridge": [1.02, 0.98, 1.05, 0.97, 1.01], "xgboost": [1.0, 1.0, 1.0, 1.0, 1.0]}
    choice = choose_family(folds, direction="minimize", label="RMSE")
    assert choice.best == "xgboost" and choice.family == "ridge"


def test_the_search_minimises_rmse():
    x, y = _data("regression", n=150)
    model = ModelParams.model_validate(
        {"name": "ridge", "params": {"alpha": 1.0}, "search_space": {"alpha": {"distribution": "log_float",
                                                                              "low": 1e-3, "high": 1e4}}}
    )  # fmt: skip
    tune_ = TuneParams(n_trials=8, cv_folds=3, n_startup_trials=4, pruning=False)
    scoring = scoring_for("regression", "rmse")
    result, study = run_search(model, tune_, x, y, storage=optuna.storages.InMemoryStorage(), study_name="s",
                               seed=0, n_jobs=1, scoring=scoring)  # fmt: skip
    assert study is not None and study.direction == optuna.study.StudyDirection.MINIMIZE
    values = [t.value for t in study.trials if t.value is not None]
    assert result.cv_mean == min(values) < max(values)


def test_xgboost_cv_early_stops_on_the_task_metric():
    x, y = _data("multiclass", n=150)
    model = ModelParams.model_validate(
        {"name": "xgboost", "early_stopping_rounds": 5, "params": {"n_estimators": 200, "learning_rate": 0.3}}
    )
    scoring = scoring_for("multiclass", "log_loss", n_classes=3)
    storage = optuna.storages.InMemoryStorage()
    result, _ = run_search(model, TuneParams(n_trials=0, cv_folds=3), x, y, storage=storage, study_name="s", seed=0,
                           n_jobs=1, scoring=scoring)  # fmt: skip
    assert result.best_rounds is not None and result.best_rounds < 200
    assert 0 < result.cv_mean < np.log(3) and len(result.fold_scores) == 3  # better than the uniform prior


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"model\.name: logreg does not serve the contract's task 'regression'"):
        ModelParams.model_validate({"name": "logreg"}).for_task("regression")
    with pytest.raises(ConfigError, match=r"tune\.objective\.regression: 'roc_auc' is not an objective"):
        objective_for("regression", "roc_auc")
    with pytest.raises(ValueError, match=r"objective\.multiclass: 'rmse' is not an objective of multiclass"):
        TuneParams(n_trials=1, objective={"multiclass": "rmse"})
    auto = ModelParams.model_validate({"name": "auto", "candidates": {"logreg": {"name": "logreg"},
                                                                        "ridge": {"name": "ridge"}}})  # fmt: skip
    assert [f.name for f in auto.for_task("regression").families] == ["ridge"]
    assert [f.name for f in auto.for_task("multiclass").families] == ["logreg"]


def _contract(task: str) -> dict:
    target = (
        {"column": "y", "task": "regression", "min": 0}
        if task == "regression"
        else {"column": "y", "task": "multiclass", "classes": ["lo", "mid", "hi"]}
    )
    features = {f"x{i}": {"type": "numeric"} for i in range(4)}
    return {"name": f"synthetic_{task}", "source": "unused.csv", "target": target, "features": features}


def _write_features(folder: Path, task: str) -> None:
    folder.mkdir(parents=True)
    x, y = _data(task, n=300, seed=4)
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(4)])
    frame.insert(0, "row", np.arange(2, 302))
    frame["y"] = y.astype(np.float64 if task == "regression" else np.int16)
    for name, rows in {"train": slice(0, 180), "val": slice(180, 240), "test": slice(240, 300)}.items():
        frame.iloc[rows].to_parquet(folder / f"{name}.parquet", index=False)


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_tune_and_train_stages_per_task(task, tmp_path, monkeypatch, params):
    monkeypatch.chdir(tmp_path)
    paths, contract = PathsParams.model_validate(params["paths"]), load_contract(_contract(task))
    _write_features(Path(paths.features), task)
    linear = "ridge" if task == "regression" else "logreg"
    candidates = {
        linear: {"name": linear, "params": SMALL[linear], "search_space": {}},
        "xgboost": {"name": "xgboost", "early_stopping_rounds": 10, "params": {"n_estimators": 100}},
        "random_forest": {"name": "random_forest", "params": SMALL["random_forest"]},
    }
    if task == "regression":
        candidates["logreg"] = {"name": "logreg"}  # not a regression family: left out, not an error
    model = ModelParams.model_validate({"name": "auto", "candidates": candidates})
    tune.run(paths, contract, model, TuneParams(n_trials=0, cv_folds=3), TrainParams(n_jobs=1), seed=1)
    metrics = read_artefact(Path(paths.tune_reports) / "metrics.json", TuneMetrics)
    choice = read_artefact(Path(paths.tune_reports) / "choice.json", TuneChoice)
    best = read_artefact(paths.best_params, BestParams)
    objective = "rmse" if task == "regression" else "log_loss"
    assert metrics.objective == choice.objective == best.objective == objective
    assert metrics.direction == "minimize" and metrics.best_cv_roc_auc is None and best.cv_score is not None
    assert set(metrics.families) == {linear, "random_forest", "xgboost"}
    assert choice.simplicity_order[0] == linear
    assert metrics.best_cv_score == min(f.cv_score_mean for f in metrics.families.values() if f.cv_score_mean)
    train.run(paths, contract, model, TrainParams(n_jobs=1), seed=1)
    meta = read_artefact(Path(paths.model) / "meta.json", ModelMeta)
    assert meta.task == task and meta.family == metrics.model
    summary = read_json(Path(paths.train_live) / "metrics.json")
    assert ("model_val_rmse" if task == "regression" else "model_val_log_loss") in summary
