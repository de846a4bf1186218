"""tune: search the model's hyper-parameters by CV on the train split, choose the family (``model: auto``), and
write the params that train uses.

Never reads the val or test split. With ``tune.n_trials: 0`` there is no search: the configured params are scored
by the same CV (and, under auto, the family chosen by them) and passed on unchanged.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from tabrepro.artefacts import BestParams, TuneChoice, TuneMetrics
from tabrepro.config.params import (
    ModelParams,
    PathsParams,
    ReproducibilityParams,
    TrainParams,
    TuneParams,
    read_section,
    read_seed,
)
from tabrepro.config.precision import DEFAULT_DECIMALS
from tabrepro.contract.spec import DataContract, load_contract
from tabrepro.evaluation.figures import save_tune_figures
from tabrepro.io.runs import record_folder, write_run_record
from tabrepro.io.staging import staged_outputs, write_json
from tabrepro.stages import run_stage
from tabrepro.training.objectives import BINARY, Scoring
from tabrepro.training.search import study_names_for
from tabrepro.training.selection import FamilySearch, simplest_first
from tabrepro.training.tuning import search_tune

log = logging.getLogger(__name__)

TRIAL_COLUMNS = ["family", "number", "state", "value"]
RULE = (
    "the best mean CV {label}, unless a simpler family's paired fold-by-fold difference to it is within one "
    "standard error of zero (SE of the mean of the per-fold differences): then the simplest such family"
)


def summarise_search(
    found: FamilySearch, model: ModelParams, tune: TuneParams
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The best-params file (the chosen family's, what train reads), the tune metrics and the choice report."""
    result, choice = found.chosen, found.choice
    search = {
        "trials_requested": tune.n_trials,
        "trials_completed": result.completed,
        "trials_pruned": result.pruned,
        "cv_folds": tune.cv_folds,
    }
    scoring = found.scoring
    best = {
        "model": choice.family,
        "source": "search" if tune.n_trials > 0 else "config",
        "params": result.params,
        # rounded to reproducibility.decimals by the search, like every score below
        **_scores(scoring, "cv_roc_auc", "cv_score", result.cv_mean, result.cv_std),
        "cv_best_rounds": result.best_rounds,
        "search": search,
    }
    metrics = {
        "model": choice.family,
        **_scores(scoring, "best_cv_roc_auc", "best_cv_score", result.cv_mean, result.cv_std),
        "cv_folds": tune.cv_folds,
        # the size of the search: a budget that bound (fewer finished than requested) fails the stage instead
        "n_trials_requested": tune.n_trials,
        "n_trials_complete": result.completed,
        "n_trials_pruned": result.pruned,
        "timeout_s": tune.timeout,
        "selection": "auto" if model.name == "auto" else "pinned",
        "best_family": choice.best,
        "families": {f: _family_metrics(found, f) for f in found.results},
    }
    return best, metrics, _choice_report(found, tune)


def _scores(scoring: Scoring, binary: str, other: str, mean: float, std: float) -> dict[str, Any]:
    """A binary task's ROC-AUC keys (as before issue 21), or another task's objective, direction and score keys."""
    if scoring == BINARY:
        return {binary: mean, f"{binary}_std": std}
    objective = scoring.objective
    return {"objective": objective.name, "direction": objective.direction, other: mean, f"{other}_std": std}


def search_timings(found: FamilySearch) -> dict[str, Any]:
    """The run record's part of the search: its wall time, in all and per family."""
    return {
        "search_seconds": round(found.seconds, 1),
        "family_seconds": {f: round(r.seconds, 1) for f, r in found.results.items()},
    }


def _family_metrics(found: FamilySearch, family: str) -> dict[str, Any]:
    result, c = found.results[family], found.choice.comparisons[family]
    binary = found.scoring == BINARY
    return {
        "cv_roc_auc_mean" if binary else "cv_score_mean": c.mean,
        "cv_roc_auc_std" if binary else "cv_score_std": c.std,
        "diff_to_best": c.diff,
        "diff_se": c.se,
        "within_one_se": c.within_one_se,
        "n_trials_complete": result.completed,
        "n_trials_pruned": result.pruned,
    }


def _choice_report(found: FamilySearch, tune: TuneParams) -> dict[str, Any]:
    families = {
        f: {
            "params": r.params,
            "best_rounds": r.best_rounds,
            "fold_scores": list(r.fold_scores),
            "fold_diffs_to_best": list(found.choice.comparisons[f].fold_diffs),
            "diff_to_best": found.choice.comparisons[f].diff,
            "diff_se": found.choice.comparisons[f].se,
            "within_one_se": found.choice.comparisons[f].within_one_se,
        }
        for f, r in found.results.items()
    }
    scoring = found.scoring
    named = {} if scoring == BINARY else {"objective": scoring.objective.name, "direction": scoring.objective.direction}
    return {
        "model": found.choice.family,
        "best_family": found.choice.best,
        **named,
        "reason": found.choice.reason,
        "rule": RULE.format(label=scoring.objective.label),
        "simplicity_order": list(simplest_first(scoring.task)),
        "cv_folds": tune.cv_folds,
        "folds_sha256": found.folds,
        "families": families,
    }


def trials_table(studies: dict[str, Any]) -> pd.DataFrame:
    """One row per trial of every family's study: family, number, state, value and the sampled params (no
    timestamps, so it diffs cleanly)."""
    frames = [
        study.trials_dataframe(attrs=("number", "state", "value", "params", "user_attrs")).assign(family=family)
        for family, study in studies.items()
        if study is not None
    ]
    if not frames:
        return pd.DataFrame(columns=TRIAL_COLUMNS)
    frame = pd.concat(frames, ignore_index=True).drop(columns=["user_attrs_fold_scores"], errors="ignore")
    frame = frame[["family", *[c for c in frame.columns if c != "family"]]]
    return frame.rename(columns=lambda c: c.replace("params_", "").replace("user_attrs_", ""))


def write_tune_outputs(
    found: FamilySearch,
    model: ModelParams,
    tune: TuneParams,
    dirs: Sequence[Path],
    *,
    names: dict[str, str],
    seed: int,
) -> None:
    """Everything tune writes, into the staged ``(best_params file, study folder, reports folder)``."""
    best_path, study_dir, reports_dir = dirs
    best, metrics, choice = summarise_search(found, model, tune)
    # exclude_unset: a binary task's files keep exactly their keys from before issue 21
    write_json(best_path, BestParams.model_validate(best).model_dump(mode="json", exclude_unset=True))
    trials_table(found.studies).to_csv(study_dir / "trials.csv", index=False)
    where = "journal.log with the run records (paths.runs)" if tune.storage is None else "database (tune.storage)"
    write_json(study_dir / "study.json", {"study_names": names, "storage": where})
    reports_dir.mkdir()
    write_json(
        reports_dir / "metrics.json", TuneMetrics.model_validate(metrics).model_dump(mode="json", exclude_unset=True)
    )
    write_json(
        reports_dir / "choice.json", TuneChoice.model_validate(choice).model_dump(mode="json", exclude_unset=True)
    )
    save_tune_figures(found.studies[found.choice.family], reports_dir / "figures", seed=seed)


def run(
    paths: PathsParams,
    contract: DataContract,
    model: ModelParams,
    tune: TuneParams,
    train: TrainParams,
    *,
    seed: int,
    decimals: int = DEFAULT_DECIMALS,
) -> None:
    started = datetime.now(UTC)
    outputs = (paths.best_params, paths.tune_study, paths.tune_reports)
    model = model.for_task(contract.target.task)  # the families that serve the task (a pinned one must)
    names = study_names_for(contract, model, tune)
    with staged_outputs(*outputs, withhold=True) as dirs:
        dirs[1].mkdir()
        # The journal holds wall-clock times and random worker ids: it stays out of the hashed study folder (which
        # gets trials.csv) and is kept with the run record once the search is done.
        journal = dirs[1].parent / "journal.log"
        found = search_tune(
            paths, contract, model, tune, journal=str(journal), seed=seed, n_jobs=train.n_jobs, decimals=decimals
        )
        write_tune_outputs(found, model, tune, dirs, names=names, seed=seed)
        if journal.exists():
            shutil.move(journal, record_folder(paths.runs, "tune") / "journal.log")
    write_run_record(paths.runs, "tune", search_timings(found), started=started)
    chosen = found.chosen
    log.info(
        "tune %s: %s, best CV %s %.4f ± %.4f (%d completed, %d pruned, %.0f s in all)",
        model.name,
        found.choice.family,
        found.scoring.objective.label,
        chosen.cv_mean,
        chosen.cv_std,
        chosen.completed,
        chosen.pruned,
        found.seconds,
    )


def _main(params: dict[str, Any]) -> None:
    run(
        read_section(params, "paths", PathsParams),
        load_contract(params.get("data")),
        read_section(params, "model", ModelParams),
        read_section(params, "tune", TuneParams),
        read_section(params, "train", TrainParams),
        seed=read_seed(params),
        decimals=read_section(params, "reproducibility", ReproducibilityParams).decimals,
    )


def main() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one log line per trial is ours (tabrepro.training.search)
    run_stage("tune", _main)


if __name__ == "__main__":
    main()
