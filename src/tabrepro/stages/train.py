"""train: fit the model with the tuned params on the train features (early-stopping on val), log curves, save it.

The family is the one tune chose (``models/best_params.json``): pinned by ``model.name``, or one of
``model.candidates`` under ``model: auto``, whose own section gives its early stopping. ``train.engine: dask``
(xgboost only) trains on a Dask cluster from the prepared splits, read in partitions, with the preprocessing
statistics computed there; the saved model is the same kind of file either way.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from dvclive.live import Live
from sklearn.base import BaseEstimator
from sklearn.metrics import (
    accuracy_score,
    log_loss,
    mean_absolute_error,
    r2_score,
    roc_auc_score,
    root_mean_squared_error,
)

from tabrepro.artefacts import BestParams, TuningProvenance, read_artefact
from tabrepro.config.params import (
    ModelParams,
    PathsParams,
    ReproducibilityParams,
    TrainParams,
    read_section,
    read_seed,
)
from tabrepro.config.precision import DEFAULT_DECIMALS, rounded, rounded_tree
from tabrepro.contract.spec import DataContract, load_contract
from tabrepro.errors import ConfigError, DataError
from tabrepro.io.persistence import load_skops
from tabrepro.io.splits import read_splits
from tabrepro.io.staging import staged_outputs
from tabrepro.stages import run_stage
from tabrepro.training.features import split_xy
from tabrepro.training.modeling import FitResult, build_model, fit_model, predict_output, save_model

log = logging.getLogger(__name__)
SPLITS = ("train", "val")  # what engine dask reads from the prepared splits


def read_best_params(path: str | Path, *, model: ModelParams) -> BestParams:
    """The tune stage's output (params to train with, and where they came from); refuses a family that ``model``
    does not have (another pinned family, or one that is not among the auto candidates)."""
    best = read_artefact(path, BestParams, error=DataError, hint="run the tune stage")
    families = [f.name for f in model.families]
    if best.model not in families:
        which = f"model.name is {model.name!r}" if model.name != "auto" else f"model.candidates are {families}"
        raise ConfigError(f"{path} holds params for {best.model!r}, but {which}; run the tune stage again")
    return best


def log_curves(live: Live, result: FitResult, scores: dict[str, float]) -> None:
    """Per-round curves (boosting) or one step of final scores, plus a summary, into ``live``."""
    rounds = max((len(v) for d in result.curves.values() for v in d.values()), default=0)
    for step in range(rounds):
        for split, metrics in result.curves.items():
            for name, values in metrics.items():
                live.log_metric(f"{split}/{name}", values[step])
        live.next_step()  # type: ignore[no-untyped-call]  # dvclive leaves Live.next_step unannotated
    if rounds == 0:
        for name, value in scores.items():
            live.log_metric(name, value)
        live.next_step()  # type: ignore[no-untyped-call]  # dvclive leaves Live.next_step unannotated
    for name, value in scores.items():
        live.summary[name] = value
    if result.best_iteration is not None:
        live.summary["best_iteration"] = result.best_iteration


def fit_in_memory(
    paths: PathsParams, contract: DataContract, family: ModelParams, model: BaseEstimator
) -> tuple[FitResult, list[str], np.ndarray, np.ndarray]:
    """``train.engine: local``: fit on the featurized splits; the fit, its feature names, val labels and
    ``predict_output`` on val (binary: P(positive))."""
    splits = read_splits(paths.features)
    x_train, y_train = split_xy(splits["train"], contract)
    x_val, y_val = split_xy(splits["val"], contract)
    result = fit_model(model, x_train, y_train, x_val, y_val, early_stopping_rounds=family.early_stopping_rounds)
    feature_names = [c for c in splits["train"].columns if c not in (contract.key_column, contract.target.column)]
    return result, feature_names, y_val, predict_output(result.model, x_val, task=contract.target.task)


def fit_on_dask(
    paths: PathsParams, contract: DataContract, family: ModelParams, model: BaseEstimator, train: TrainParams
) -> tuple[FitResult, list[str], np.ndarray, np.ndarray]:
    """``train.engine: dask``: read the prepared splits in partitions, fit the preprocessor's statistics with Dask
    (refusing when they differ from the preprocessor ``package`` will export), transform and fit on the cluster."""
    from dask.base import compute, persist

    from tabrepro.training import distributed

    if contract.target.task != "binary":
        raise ConfigError(
            f"params.yaml: train.engine: 'dask' trains binary tasks only, but data.target.task is "
            f"{contract.target.task!r} (issue 21: not supported yet); set train.engine: local"
        )
    if family.name != "xgboost":
        raise ConfigError(
            f"params.yaml: train.engine: 'dask' trains xgboost only, but the family to train is {family.name!r} "
            "(model.name, or tune's choice under model: auto); set train.engine: local, or model=xgboost"
        )
    saved = load_skops(paths.preprocessor)
    with distributed.dask_client(
        train.scheduler, workers=train.workers, threads=train.n_jobs, memory_limit=train.memory_limit
    ) as client:
        if client.scheduler is None:
            raise ConfigError(f"params.yaml: train.scheduler: the Dask client of {train.scheduler!r} has no scheduler")
        log.info("training on Dask, scheduler %s", client.scheduler.address)
        workers = len(client.nthreads())
        tables = {s: distributed.read_table(Path(paths.prepared) / f"{s}.parquet", partitions=workers) for s in SPLITS}
        preprocessor = distributed.fit_preprocessor(saved, tables["train"])
        differences = distributed.preprocessor_differences(preprocessor, saved)
        if differences:
            raise DataError(
                f"{paths.preprocessor}: the preprocessor package exports differs from the statistics computed on "
                f"Dask from {paths.prepared}/train.parquet ({'; '.join(differences)}); run featurize again"
            )
        target = contract.target.column
        frames = {s: distributed.transform_partitions(preprocessor, t, target=target) for s, t in tables.items()}
        # preprocessed once: two fits, predictions
        train_frame, val = persist(frames["train"], frames["val"])  # type: ignore[no-untyped-call]  # dask: unannotated
        stopping = family.early_stopping_rounds
        result = distributed.fit_xgboost(client, model, train_frame, val, target=target, early_stopping_rounds=stopping)
        p_val = distributed.predict_positive(result.model, val.drop(columns=[target]))
        y_val, p_val = compute(val[target], p_val)  # type: ignore[no-untyped-call]  # dask: unannotated
    names = [str(n) for n in preprocessor.get_feature_names_out()]
    return result, names, y_val.to_numpy(dtype=np.int64), p_val.to_numpy()


def run(
    paths: PathsParams,
    contract: DataContract,
    model_params: ModelParams,
    train: TrainParams,
    *,
    seed: int,
    decimals: int = DEFAULT_DECIMALS,
) -> None:
    target = contract.target
    model_params = model_params.for_task(target.task)
    tuned = read_best_params(paths.best_params, model=model_params)
    family = model_params.family(tuned.model)
    model = build_model(family.name, dict(tuned.params), task=target.task, seed=seed, n_jobs=train.n_jobs,
                        n_classes=max(len(target.labels), 2))  # fmt: skip
    if train.engine == "dask":
        result, feature_names, y_val, p_val = fit_on_dask(paths, contract, family, model, train)
    else:
        result, feature_names, y_val, p_val = fit_in_memory(paths, contract, family, model)
    # written at the declared precision, like the per-round curves
    scores = {name: rounded(value, decimals) for name, value in val_scores(target.task, y_val, p_val).items()}
    result = replace(result, curves=rounded_tree(result.curves, decimals))
    with staged_outputs(paths.model, paths.train_live, withhold=True) as (model_dir, live_dir):
        meta = save_model(
            result.model,
            family.name,
            model_dir,
            feature_names=feature_names,
            best_iteration=result.best_iteration,
            seed=seed,
            hyperparameters=tuned.params,
            tuning=TuningProvenance.model_validate(
                {"source": tuned.source, "search": tuned.search, **_tuned_scores(tuned)}
            ),
            engine=train.engine,
            # a binary model's meta.json keeps its keys from before issue 21 (task defaults to binary)
            **({} if target.task == "binary" else {"task": target.task, "classes": target.labels}),
        )
        live = Live(dir=str(live_dir), dvcyaml=None, save_dvc_exp=False, report=None)
        log_curves(live, result, scores)
        live.end()  # type: ignore[no-untyped-call]  # dvclive leaves Live.end unannotated
    first = next(iter(scores))
    log.info("trained %s (%s): %s %.4f, sha256 %s", family.name, train.engine, first, scores[first], meta.sha256[:12])


def val_scores(task: str, y: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """The val metrics train logs: binary ROC-AUC and log-loss; multiclass log-loss, accuracy and macro OvR
    ROC-AUC; regression RMSE, MAE and R²."""
    if task == "regression":
        return {
            "model_val_rmse": float(root_mean_squared_error(y, predicted)),
            "model_val_mae": float(mean_absolute_error(y, predicted)),
            "model_val_r2": float(r2_score(y, predicted)),
        }
    if task == "multiclass":
        labels = np.arange(predicted.shape[1])
        return {
            "model_val_log_loss": float(log_loss(y, predicted, labels=labels)),
            "model_val_accuracy": float(accuracy_score(y, predicted.argmax(axis=1))),
            "model_val_roc_auc_ovr_macro": float(
                roc_auc_score(y, predicted, multi_class="ovr", average="macro", labels=labels)
            ),
        }
    return {
        "model_val_roc_auc": float(roc_auc_score(y, predicted)),
        "model_val_log_loss": float(log_loss(y, predicted)),
    }


def _tuned_scores(tuned: BestParams) -> dict[str, Any]:
    """The CV score tune recorded: ROC-AUC (binary), or the objective's name and score."""
    if tuned.cv_roc_auc is not None:
        return {"cv_roc_auc": tuned.cv_roc_auc, "cv_roc_auc_std": tuned.cv_roc_auc_std}
    return {"objective": tuned.objective, "cv_score": tuned.cv_score, "cv_score_std": tuned.cv_score_std}


def _main(params: dict[str, Any]) -> None:
    run(
        read_section(params, "paths", PathsParams),
        load_contract(params.get("data")),
        read_section(params, "model", ModelParams),
        read_section(params, "train", TrainParams),
        seed=read_seed(params),
        decimals=read_section(params, "reproducibility", ReproducibilityParams).decimals,
    )


def main() -> None:
    run_stage("train", _main)


if __name__ == "__main__":
    main()
