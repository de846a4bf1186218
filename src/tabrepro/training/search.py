"""Hyper-parameter search with Optuna: the search space from config, a CV objective, a reproducible study.

The objective is the mean of a per-fold score over k-fold CV on the training data (folds seeded): ROC-AUC for a
binary task by default, the task's ``tune.objective`` otherwise (``tabrepro.training.objectives``: its direction
is the study's, the pruner's and XGBoost's early stopping's). Folds are stratified by class for classification and
by quantile bins of the target for regression (``make_folds``). XGBoost runs its
folds in lockstep with ``xgboost.cv`` and is pruned per boosting round; other families are pruned per fold.
Everything that can be wrong with the configuration (names, types and ranges of the configured hyper-parameters and
of the search space's bounds, distributions, storage) is checked by ``check_search`` before any trial runs.

Every score the search compares or records (each fold's ROC-AUC, their mean and std, the values reported to the
pruner, the objective returned to Optuna) is ``rounded`` to the declared precision (``reproducibility.decimals``)
first, so a last-digit difference between two CPUs cannot change which trial is best, which is pruned, or what
TPE samples next.

Each family is one study (``model: auto`` searches several, each with the budget; see ``selection``). Every
trial records its per-fold scores, so families can be compared fold by fold on the same folds.

The budget is ``tune.n_trials`` (per family). A ``tune.timeout`` is only a safety net: when it binds (fewer than
``n_trials`` trials finished) the result depends on the machine's speed and load, so ``run_search`` refuses it
rather than return a search cut short as if it were the one configured.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import optuna
import pandas as pd
import xgboost as xgb
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import KFold, StratifiedKFold

from tabrepro.config.params import ModelParams, SearchDimension, TuneParams
from tabrepro.config.precision import DEFAULT_DECIMALS, rounded
from tabrepro.contract.spec import DataContract
from tabrepro.errors import ConfigError, DataError
from tabrepro.training.features import split_xy
from tabrepro.training.hyperparameters import check_model_section
from tabrepro.training.modeling import build_model, fit_for_prediction, predict_output
from tabrepro.training.objectives import BINARY, Scoring
from tabrepro.training.study_storage import open_storage as open_storage  # re-exported: its home is study_storage
from tabrepro.training.study_storage import settle_trials, storage_errors

log = logging.getLogger(__name__)

_REPORT_EVERY = 10  # boosting rounds between pruning checks
_WARMUP = {"xgboost": 50}  # pruning waits this many steps (rounds for boosting, else folds)


@dataclass(frozen=True)
class CVScore:
    """The objective's score on each fold, their mean and std (all ``rounded``), and (xgboost) the best rounds."""

    mean: float
    std: float
    rounds: int | None
    folds: tuple[float, ...]

    @classmethod
    def of_folds(cls, folds: list[float], *, rounds: int | None, decimals: int) -> CVScore:
        """The score of per-fold ROC-AUCs, each rounded before the mean and std are taken (and rounded)."""
        kept = tuple(rounded(f, decimals) for f in folds)
        return cls(rounded(np.mean(kept), decimals), rounded(np.std(kept), decimals), rounds, kept)


@dataclass(frozen=True)
class SearchResult:
    """What a search found: the params to train with and how they scored in CV."""

    params: dict[str, Any]
    cv_mean: float
    cv_std: float
    best_rounds: int | None
    completed: int
    pruned: int
    seconds: float
    requested: int = 0
    fold_scores: tuple[float, ...] = ()

    @property
    def budget_bound(self) -> bool:
        """Whether the search stopped before ``requested`` trials finished (completed or pruned)."""
        return self.completed + self.pruned < self.requested


def check_search(model: ModelParams, tune: TuneParams) -> None:
    """Refuse, before trial 0, every hyper-parameter name, type or range the family does not accept: in
    ``model.params`` (a searched one too: a wrong configured value is refused, not silently replaced) and in the
    search space's bounds and choices. The shape of each dimension is checked by ``SearchDimension``."""
    for family in model.families:
        where = "params.yaml: model" if family is model else f"params.yaml: model.candidates.{family.name}"
        check_model_section(family.name, dict(family.params), dict(family.search_space), where=where)
        if tune.n_trials > 0 and not family.search_space:
            raise ConfigError(f"{where}.search_space: {family.name} has no search space but tune.n_trials > 0")


def read_search_data(features_dir: str | Path, contract: DataContract) -> tuple[np.ndarray, np.ndarray]:
    """The train features the search cross-validates on; a missing file names the stage that writes it."""
    path = Path(features_dir) / "train.parquet"
    if not path.is_file():
        raise DataError(f"{path}: not found; the featurize stage writes it (run `dvc repro featurize` first)")
    return split_xy(pd.read_parquet(path), contract)


def suggest(trial: optuna.Trial, space: dict[str, SearchDimension]) -> dict[str, Any]:
    """Sample one value per dimension."""
    values: dict[str, Any] = {}
    for name, dim in space.items():
        if dim.distribution == "categorical":
            values[name] = trial.suggest_categorical(name, list(dim.choices or ()))
        elif dim.distribution == "int":
            low, high = dim.bounds()
            values[name] = trial.suggest_int(name, int(low), int(high), step=int(dim.step or 1))
        else:
            low, high = dim.bounds()
            values[name] = trial.suggest_float(name, low, high, log=dim.distribution == "log_float", step=dim.step)
    return values


def cv_score(
    model: ModelParams,
    params: dict[str, Any],
    x: np.ndarray,
    y: np.ndarray,
    *,
    folds: list[tuple[np.ndarray, np.ndarray]],
    seed: int,
    n_jobs: int,
    trial: optuna.Trial | None = None,
    decimals: int = DEFAULT_DECIMALS,
    scoring: Scoring = BINARY,
) -> CVScore:
    """Fold scores of ``params`` by ``scoring``'s objective (mean, std, each fold's), and (xgboost) the best
    number of rounds."""
    if model.name == "xgboost":
        return _xgb_cv(model, params, x, y, folds=folds, seed=seed, n_jobs=n_jobs, trial=trial, decimals=decimals,
                       scoring=scoring)  # fmt: skip
    task, n_classes = scoring.task, scoring.n_classes
    scores: list[float] = []
    for i, (fit_idx, held_idx) in enumerate(folds):
        unfitted = build_model(model.name, params, task=task, seed=seed, n_jobs=n_jobs, n_classes=n_classes)
        estimator = fit_for_prediction(unfitted, x[fit_idx], y[fit_idx])
        scores.append(scoring.objective.score(y[held_idx], predict_output(estimator, x[held_idx], task=task)))
        if trial is not None:
            trial.report(CVScore.of_folds(scores, rounds=None, decimals=decimals).mean, i)
            if trial.should_prune():
                raise optuna.TrialPruned()
    return CVScore.of_folds(scores, rounds=None, decimals=decimals)


class _KeepFolds(xgb.callback.TrainingCallback):
    """Keeps ``xgboost.cv``'s fold boosters, so each fold's ROC-AUC at the best round can be read afterwards."""

    def __init__(self) -> None:
        super().__init__()
        self.folds: list[Any] = []

    def after_training(self, model: Any) -> Any:
        self.folds = list(model.cvfolds)
        return model


def _fold_aucs(folds: list[Any], rounds: int) -> tuple[float, ...]:
    """ROC-AUC of each fold's booster, on its held-out rows, with its first ``rounds`` rounds."""
    return tuple(
        float(roc_auc_score(f.dtest.get_label(), f.bst.predict(f.dtest, iteration_range=(0, rounds)))) for f in folds
    )


def _fold_scores(folds: list[Any], rounds: int, scoring: Scoring) -> tuple[float, ...]:
    """The objective on each fold's held-out rows, by its booster with its first ``rounds`` rounds."""
    scores = []
    for f in folds:
        label = f.dtest.get_label()
        y = label if scoring.task == "regression" else label.astype(np.int64)
        scores.append(scoring.objective.score(y, f.bst.predict(f.dtest, iteration_range=(0, rounds))))
    return tuple(scores)


class _PruneOnRound(xgb.callback.TrainingCallback):
    def __init__(self, trial: optuna.Trial, decimals: int, metric: str = "auc") -> None:
        super().__init__()
        self.trial, self.decimals, self.metric = trial, decimals, metric

    def after_iteration(self, model: Any, epoch: int, evals_log: xgb.callback.TrainingCallback.EvalsLog) -> bool:
        if epoch % _REPORT_EVERY == 0:
            last = evals_log["test"][self.metric][-1]
            self.trial.report(rounded(last[0] if isinstance(last, tuple) else last, self.decimals), epoch)
            if self.trial.should_prune():
                raise optuna.TrialPruned()
        return False


def _xgb_cv(
    model: ModelParams,
    params: dict[str, Any],
    x: np.ndarray,
    y: np.ndarray,
    *,
    folds: list[tuple[np.ndarray, np.ndarray]],
    seed: int,
    n_jobs: int,
    trial: optuna.Trial | None,
    decimals: int,
    scoring: Scoring = BINARY,
) -> CVScore:
    task, metric = scoring.task, scoring.objective.xgb_metric
    estimator = build_model("xgboost", params, task=task, seed=seed, n_jobs=n_jobs, n_classes=scoring.n_classes)
    kept = _KeepFolds()
    native = {k: v for k, v in estimator.get_xgb_params().items() if v is not None}
    native["eval_metric"] = metric
    pruning = [_PruneOnRound(trial, decimals, metric)] if trial is not None else []
    history = xgb.cv(
        native,
        xgb.DMatrix(x, label=y),
        num_boost_round=int(estimator.n_estimators),
        folds=folds,
        early_stopping_rounds=model.early_stopping_rounds,
        callbacks=[kept, *pruning],
        as_pandas=True,
    )
    if not isinstance(history, pd.DataFrame):  # as_pandas=True gives a frame when pandas is installed
        raise TypeError(f"xgboost.cv returned {type(history).__name__}, not the pandas DataFrame asked for")
    means = [rounded(m, decimals) for m in history[f"test-{metric}-mean"]]
    # the first round with the best rounded mean, in the objective's direction
    best = int(np.argmax(means) if scoring.objective.direction == "maximize" else np.argmin(means))
    if scoring != BINARY:  # the objective itself on each fold (XGBoost's metric may only stand in for it)
        return CVScore.of_folds(list(_fold_scores(kept.folds, best + 1, scoring)), rounds=best + 1, decimals=decimals)
    std = rounded(history["test-auc-std"].iloc[best], decimals)
    folds_at_best = tuple(rounded(f, decimals) for f in _fold_aucs(kept.folds, best + 1))
    return CVScore(means[best], std, best + 1, folds_at_best)


def make_folds(y: np.ndarray, *, k: int, seed: int, task: str = "binary") -> list[tuple[np.ndarray, np.ndarray]]:
    """Seeded k-fold indices, the same for every trial and family: stratified by class for classification, by
    quantile bins of the target for regression (``regression_strata``)."""
    if task == "regression":
        if len(y) < k:
            raise ConfigError(f"params.yaml: tune.cv_folds: {k} folds need at least {k} rows, got {len(y)}")
        strata = regression_strata(y, k=k)
        if strata.max() == 0:  # one bin (a constant target, or too few rows): plain shuffled k-fold
            return list(KFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(y))))
        return list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(y)), strata))
    if np.bincount(y).min() < k:
        raise ConfigError(f"params.yaml: tune.cv_folds: {k} folds need at least {k} rows of each class")
    return list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))


def regression_strata(y: np.ndarray, *, k: int) -> np.ndarray:
    """The quantile bin of each target value: ``len(y) // k`` bins at most (so each holds about k rows, one per
    fold) and at most 10, cut at the target's quantiles; tied cut points merge bins. Bin indices 0..B-1."""
    n_bins = max(1, min(10, len(y) // k))
    edges = np.unique(np.quantile(y, np.linspace(0, 1, n_bins + 1)[1:-1]))
    strata = np.searchsorted(edges, y, side="right")
    while len(edges) and np.bincount(strata).min() < k:  # a bin thinner than k rows: merge it with a neighbour
        edges = np.delete(edges, min(int(np.argmin(np.bincount(strata))), len(edges) - 1))
        strata = np.searchsorted(edges, y, side="right")
    return np.unique(strata, return_inverse=True)[1]


def folds_digest(folds: list[tuple[np.ndarray, np.ndarray]]) -> str:
    """sha256 of the held-out row indices of every fold, in order: equal digests mean the same folds."""
    digest = hashlib.sha256()
    for _, held in folds:
        digest.update(np.asarray(held, dtype=np.int64).tobytes() + b"|")
    return digest.hexdigest()


def run_search(
    model: ModelParams,
    tune: TuneParams,
    x: np.ndarray,
    y: np.ndarray,
    *,
    storage: optuna.storages.BaseStorage,
    study_name: str,
    seed: int,
    n_jobs: int,
    worker: int = 0,
    folds: list[tuple[np.ndarray, np.ndarray]] | None = None,
    decimals: int = DEFAULT_DECIMALS,
    scoring: Scoring = BINARY,
) -> tuple[SearchResult, optuna.Study | None]:
    """Search one family's ``model.search_space`` (or, with ``n_trials == 0``, just score the configured params).

    Extra workers joining a shared study pass ``worker`` >= 1: the folds stay the same, the sampler's seed
    differs so that workers do not propose the same trials. ``folds`` defaults to ``make_folds(y, ...)``.
    """
    started = time.perf_counter()
    folds = folds if folds is not None else make_folds(y, k=tune.cv_folds, seed=seed, task=scoring.task)
    if tune.n_trials == 0:
        cv = cv_score(model, model.params, x, y, folds=folds, seed=seed, n_jobs=n_jobs, decimals=decimals,
                      scoring=scoring)  # fmt: skip
        label = scoring.objective.label
        log.info("%s: tune.n_trials is 0, no search; configured params: CV %s %.4f", model.name, label, cv.mean)
        seconds = time.perf_counter() - started
        return SearchResult(dict(model.params), cv.mean, cv.std, cv.rounds, 0, 0, seconds, 0, cv.folds), None
    with storage_errors(tune, study_name):
        study = _optimize(model, tune, x, y, storage=storage, study_name=study_name, seed=seed, n_jobs=n_jobs,
                          worker=worker, folds=folds, decimals=decimals, scoring=scoring)  # fmt: skip
        trials = study.get_trials(deepcopy=False)
    states = [t.state for t in trials]
    completed, pruned = states.count(optuna.trial.TrialState.COMPLETE), states.count(optuna.trial.TrialState.PRUNED)
    check_budget(tune, completed=completed, pruned=pruned)
    sign = scoring.objective.sign
    best = max((t for t in trials if t.state == optuna.trial.TrialState.COMPLETE), key=lambda t: sign * _objective(t))
    return (
        SearchResult(
            params={**model.params, **best.params},
            cv_mean=_objective(best),
            cv_std=float(best.user_attrs["cv_std"]),
            best_rounds=best.user_attrs.get("best_rounds"),
            completed=completed,
            pruned=pruned,
            seconds=time.perf_counter() - started,
            requested=tune.n_trials,
            fold_scores=tuple(best.user_attrs["fold_scores"]),
        ),
        study,
    )


def _optimize(
    model: ModelParams,
    tune: TuneParams,
    x: np.ndarray,
    y: np.ndarray,
    *,
    storage: optuna.storages.BaseStorage,
    study_name: str,
    seed: int,
    n_jobs: int,
    worker: int,
    folds: list[tuple[np.ndarray, np.ndarray]],
    decimals: int,
    scoring: Scoring = BINARY,
) -> optuna.Study:
    """Run trials until the study (shared or not) has ``tune.n_trials`` finished ones, then wait for the trials
    other processes still run (``settle_trials``), so that the study's best is the best of all that finished."""
    warmup = _WARMUP.get(model.name, 1)
    # seeds live in [0, 2**32 - 1] (numpy), so a worker's offset wraps rather than overflows past the last one
    study = create_study(tune, storage=storage, study_name=study_name, seed=(seed + worker) % 2**32, warmup=warmup,
                         direction=scoring.objective.direction)  # fmt: skip
    _enqueue_configured(study, model)

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", worker)  # first, so a trial that dies is traced to its worker
        params = {**model.params, **suggest(trial, model.search_space)}
        cv = cv_score(model, params, x, y, folds=folds, seed=seed, n_jobs=n_jobs, trial=trial, decimals=decimals,
                      scoring=scoring)  # fmt: skip
        trial.set_user_attr("cv_std", cv.std)
        trial.set_user_attr("best_rounds", cv.rounds)
        trial.set_user_attr("fold_scores", list(cv.folds))
        return cv.mean  # rounded: what TPE and the best trial are decided on

    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    # a process joining a study that is already done (a late worker, a rerun) adds no trial after the result
    if len(study.get_trials(deepcopy=False, states=done)) < tune.n_trials:
        stop = optuna.study.MaxTrialsCallback(tune.n_trials, states=done)
        study.optimize(objective, n_trials=tune.n_trials, timeout=tune.timeout, callbacks=[stop, _log_trial])
    settle_trials(study)
    return study


def _objective(trial: optuna.trial.FrozenTrial) -> float:
    """A completed trial's CV score (Optuna records a value for every completed trial of a one-objective study)."""
    if trial.value is None:
        raise RuntimeError(f"trial {trial.number} is complete but has no objective value")
    return float(trial.value)


def check_budget(tune: TuneParams, *, completed: int, pruned: int) -> None:
    """Refuse a search that ``tune.timeout`` cut short: how many trials ran would depend on the machine."""
    finished = completed + pruned
    if finished >= tune.n_trials:
        return
    stopped = "stopped" if tune.timeout is None else f"ran out of its {tune.timeout:g} s budget"
    raise ConfigError(
        f"params.yaml: tune.timeout: the search {stopped} after {finished} of {tune.n_trials} trials "
        f"(tune.n_trials): {completed} completed, {pruned} pruned. A search cut short by time gives a "
        "result that depends on the machine's speed and load, so it is not used. Set tune.timeout: null (the "
        "budget is then tune.n_trials alone), or raise tune.timeout, or lower tune.n_trials."
    )


def create_study(
    tune: TuneParams,
    *,
    storage: optuna.storages.BaseStorage,
    study_name: str,
    seed: int,
    warmup: int = 1,
    direction: Literal["maximize", "minimize"] = "maximize",
) -> optuna.Study:
    """A study in the objective's ``direction``, with a seeded TPE sampler and (optionally) median pruning; joins
    it if it exists."""
    pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=max(tune.n_startup_trials, 1), n_warmup_steps=warmup)
        if tune.pruning
        else optuna.pruners.NopPruner()
    )
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=tune.n_startup_trials)
    return optuna.create_study(
        storage=storage,
        sampler=sampler,
        pruner=pruner,
        study_name=study_name,
        direction=direction,
        load_if_exists=True,
    )


def _enqueue_configured(study: optuna.Study, model: ModelParams) -> None:
    """Try the configured params first, so the search never returns something worse than config."""
    if study.trials:
        return
    start = {k: v for k, v in model.params.items() if k in model.search_space and _inside(v, model.search_space[k])}
    if start:
        study.enqueue_trial(start)


def _inside(value: Any, dim: SearchDimension) -> bool:
    if dim.distribution == "categorical":
        return value in (dim.choices or ())
    return isinstance(value, int | float) and dim.low <= value <= dim.high  # type: ignore[operator]


def _log_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    best = study.best_value if any(t.state.name == "COMPLETE" for t in study.trials) else float("nan")
    value = f"{trial.value:.4f}" if trial.value is not None else "-"
    name, number, state = study.study_name, trial.number, trial.state.name
    log.info("%s: trial %3d %-8s CV score %s  (best %.4f)", name, number, state, value, best)


def study_names_for(contract: DataContract, model: ModelParams, tune: TuneParams) -> dict[str, str]:
    """The study of each family searched, one per family (pruning and TPE then compare like with like):
    ``<data.name>-<family>``, or ``tune.study_name`` (suffixed ``-<family>`` under ``model: auto``)."""
    if tune.study_name is None:
        return {f.name: f"{contract.name}-{f.name}" for f in model.families}
    if model.name != "auto":
        return {model.name: tune.study_name}
    return {f.name: f"{tune.study_name}-{f.name}" for f in model.families}
