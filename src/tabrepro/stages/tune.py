"""tune: search the model's hyper-parameters by CV on the train split; write the params that train uses.

Never reads the val or test split. With ``tune.n_trials: 0`` there is no search: the configured params are scored
by the same CV and passed on unchanged.
"""

from __future__ import annotations

import logging
from typing import Any

import optuna
import pandas as pd

from tabrepro.artefacts import BestParams, TuneMetrics
from tabrepro.config.params import ModelParams, PathsParams, TrainParams, TuneParams, read_section, read_seed
from tabrepro.contract.spec import DataContract, load_contract
from tabrepro.evaluation.figures import save_tune_figures
from tabrepro.io.staging import staged_outputs, write_json
from tabrepro.stages import run_stage
from tabrepro.training.search import (
    SearchResult,
    check_search,
    open_storage,
    read_search_data,
    run_search,
    study_name_for,
)

log = logging.getLogger(__name__)

TRIAL_COLUMNS = ["number", "state", "value"]


def summarise_search(result: SearchResult, model: ModelParams, tune: TuneParams) -> tuple[dict, dict]:
    """The best-params file (what train reads, with where the params came from) and the tune metrics."""
    best = {
        "model": model.name,
        "source": "search" if tune.n_trials > 0 else "config",
        "params": result.params,
        "cv_roc_auc": round(result.cv_mean, 6),
        "cv_roc_auc_std": round(result.cv_std, 6),
        "cv_best_rounds": result.best_rounds,
        "search": {
            "trials_requested": tune.n_trials,
            "trials_completed": result.completed,
            "trials_pruned": result.pruned,
            "cv_folds": tune.cv_folds,
        },
    }
    metrics = {
        "model": model.name,
        "best_cv_roc_auc": round(result.cv_mean, 6),
        "best_cv_roc_auc_std": round(result.cv_std, 6),
        "cv_folds": tune.cv_folds,
        # the size of the search: a budget that bound (fewer finished than requested) fails the stage instead
        "n_trials_requested": tune.n_trials,
        "n_trials_complete": result.completed,
        "n_trials_pruned": result.pruned,
        "budget_bound": result.budget_bound,
        "timeout_s": tune.timeout,
        "seconds": round(result.seconds, 1),
    }
    return best, metrics


def trials_table(study: Any) -> pd.DataFrame:
    """One row per trial: number, state, value and the sampled params (no timestamps, so it diffs cleanly)."""
    if study is None:
        return pd.DataFrame(columns=TRIAL_COLUMNS)
    frame = study.trials_dataframe(attrs=("number", "state", "value", "params", "user_attrs"))
    return frame.rename(columns=lambda c: c.replace("params_", "").replace("user_attrs_", ""))


def run(
    paths: PathsParams,
    contract: DataContract,
    model: ModelParams,
    tune: TuneParams,
    train: TrainParams,
    *,
    seed: int,
) -> None:
    check_search(model, tune)
    x, y = read_search_data(paths.features, contract)
    outputs = (paths.best_params, paths.tune_study, paths.tune_reports)
    with staged_outputs(*outputs) as (best_path, study_dir, reports_dir):
        study_dir.mkdir()
        storage = open_storage(tune, str(study_dir / "journal.log"))
        name = study_name_for(contract, model, tune)
        result, study = run_search(model, tune, x, y, storage=storage, study_name=name, seed=seed, n_jobs=train.n_jobs)
        best, metrics = summarise_search(result, model, tune)
        write_json(best_path, BestParams.model_validate(best).model_dump(mode="json"))
        trials_table(study).to_csv(study_dir / "trials.csv", index=False)
        where = "journal.log" if tune.storage is None else "database (tune.storage)"
        write_json(study_dir / "study.json", {"study_name": name, "storage": where})
        reports_dir.mkdir()
        write_json(reports_dir / "metrics.json", TuneMetrics.model_validate(metrics).model_dump(mode="json"))
        save_tune_figures(study, reports_dir / "figures", seed=seed)
    log.info(
        "tune %s: best CV ROC-AUC %.4f ± %.4f (%d completed, %d pruned, %.0f s)",
        model.name,
        result.cv_mean,
        result.cv_std,
        result.completed,
        result.pruned,
        result.seconds,
    )


def _main(params: dict[str, Any]) -> None:
    run(
        read_section(params, "paths", PathsParams),
        load_contract(params.get("data")),
        read_section(params, "model", ModelParams),
        read_section(params, "tune", TuneParams),
        read_section(params, "train", TrainParams),
        seed=read_seed(params),
    )


def main() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one log line per trial is ours (tabrepro.training.search)
    run_stage("tune", _main)


if __name__ == "__main__":
    main()
