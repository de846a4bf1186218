"""train: fit the model with the tuned params on the train features (early-stopping on val), log curves, save it.

The family is the one tune chose (``models/best_params.json``): pinned by ``model.name``, or one of
``model.candidates`` under ``model: auto``, whose own section gives its early stopping.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from dvclive import Live
from sklearn.metrics import log_loss, roc_auc_score

from tabrepro.artefacts import BestParams, TuningProvenance, read_artefact
from tabrepro.config.params import ModelParams, PathsParams, TrainParams, read_section, read_seed
from tabrepro.contract.spec import DataContract, load_contract
from tabrepro.errors import ConfigError, DataError
from tabrepro.io.splits import read_splits
from tabrepro.io.staging import staged_outputs
from tabrepro.stages import run_stage
from tabrepro.training.features import split_xy
from tabrepro.training.modeling import FitResult, build_model, fit_model, save_model

log = logging.getLogger(__name__)


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
        live.next_step()
    if rounds == 0:
        for name, value in scores.items():
            live.log_metric(name, value)
        live.next_step()
    for name, value in scores.items():
        live.summary[name] = value
    if result.best_iteration is not None:
        live.summary["best_iteration"] = result.best_iteration


def run(
    paths: PathsParams, contract: DataContract, model_params: ModelParams, train: TrainParams, *, seed: int
) -> None:
    splits = read_splits(paths.features)
    x_train, y_train = split_xy(splits["train"], contract)
    x_val, y_val = split_xy(splits["val"], contract)
    tuned = read_best_params(paths.best_params, model=model_params)
    family = model_params.family(tuned.model)
    model = build_model(family.name, dict(tuned.params), seed=seed, n_jobs=train.n_jobs)
    result = fit_model(model, x_train, y_train, x_val, y_val, early_stopping_rounds=family.early_stopping_rounds)
    p_val = result.model.predict_proba(x_val)[:, 1]
    scores = {
        "model_val_roc_auc": float(roc_auc_score(y_val, p_val)),
        "model_val_log_loss": float(log_loss(y_val, p_val)),
    }
    feature_names = [c for c in splits["train"].columns if c not in (contract.key_column, contract.target.column)]
    with staged_outputs(paths.model, paths.train_live) as (model_dir, live_dir):
        meta = save_model(
            result.model,
            family.name,
            model_dir,
            feature_names=feature_names,
            best_iteration=result.best_iteration,
            seed=seed,
            hyperparameters=tuned.params,
            tuning=TuningProvenance.model_validate(tuned.model_dump(include=set(TuningProvenance.model_fields))),
        )
        live = Live(dir=str(live_dir), dvcyaml=None, save_dvc_exp=False, report=None)
        log_curves(live, result, scores)
        live.end()
    log.info(
        "trained %s: val ROC-AUC %.4f, sha256 %s",
        family.name,
        scores["model_val_roc_auc"],
        meta.sha256[:12],
    )


def _main(params: dict[str, Any]) -> None:
    run(
        read_section(params, "paths", PathsParams),
        load_contract(params.get("data")),
        read_section(params, "model", ModelParams),
        read_section(params, "train", TrainParams),
        seed=read_seed(params),
    )


def main() -> None:
    run_stage("train", _main)


if __name__ == "__main__":
    main()
