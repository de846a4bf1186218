"""Does ``model: auto`` pick a family as good as the better of logistic regression and XGBoost?

Runs prepare -> featurize -> tune (the committed conf/, ``model: auto``, its default budget) for one data set in a
temporary folder, takes each family's tuned hyper-parameters from ``reports/tune/choice.json``, and scores them by
repeated stratified CV (5 folds x 3 repeats by default) on all prepared rows, each as a whole pipeline (the
contract's preprocessor + the estimator, refit in every fold; XGBoost with the rounds its tuning CV picked). Prints
the families side by side with the auto choice, and whether the choice is within 0.005 ROC-AUC of the better of
logistic regression and XGBoost in the repeated CV (exit status 1 when it is not):

    .venv/bin/python bench/model_choice.py [--data conf/contracts/telco_churn.yaml] [--n-trials 40]

The tuned hyper-parameters were chosen by CV on the train split only, which overlaps these folds: a mild optimism
shared by every family, so the comparison between them stands.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import RepeatedStratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline

from tabrepro.artefacts import TuneChoice, TuneMetrics, read_artefact
from tabrepro.config.compose import write_params
from tabrepro.config.params import FeaturesParams, PathsParams, load_params, read_section, read_seed
from tabrepro.contract.spec import load_contract
from tabrepro.io.splits import read_splits
from tabrepro.training.features import build_preprocessor
from tabrepro.training.modeling import build_model
from tabrepro.training.selection import SIMPLEST_FIRST

TOLERANCE = 0.005
STAGES = ("prepare", "featurize", "tune")


def tune_in(work: Path, data: str, n_trials: int | None) -> dict:
    """Compose conf/ for ``data`` into ``work`` and run the stages up to tune there; return the params."""
    shutil.copytree("conf", work / "conf")
    budget = [] if n_trials is None else [f"tune.n_trials={n_trials}"]
    write_params(work / "params.yaml", work / "conf", [f"data={data}", *budget])
    params = load_params(work / "params.yaml")
    source = Path(params["data"]["source"])
    (work / source).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, work / source)
    for stage in STAGES:
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", f"tabrepro.stages.{stage}"], cwd=work, capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise SystemExit(f"stage {stage} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
        print(f"{stage}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return params


def repeated_cv(work: Path, params: dict, choice: TuneChoice, *, folds: int, repeats: int) -> dict[str, np.ndarray]:
    """Each family's tuned estimator, as a whole pipeline, scored fold by fold (the same folds for every family)."""
    paths = read_section(params, "paths", PathsParams)
    contract, features, seed = (
        load_contract(params["data"]),
        read_section(params, "features", FeaturesParams),
        read_seed(params),
    )
    data = pd.concat(read_splits(work / paths.prepared).values(), ignore_index=True)
    y = data[contract.target.column].to_numpy()
    cv = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    print(f"{contract.name}: {len(data)} rows, {folds}-fold stratified CV x {repeats} repeats\n", file=sys.stderr)
    scores = {}
    for family in sorted(choice.families, key=SIMPLEST_FIRST.index):
        tuned = choice.families[family]
        hyper = dict(tuned.params) | ({"n_estimators": tuned.best_rounds} if tuned.best_rounds else {})
        pre = build_preprocessor(contract, numeric_impute=features.numeric_impute, drop=features.drop)
        pipeline = Pipeline([("pre", pre), ("model", build_model(family, hyper, seed=seed, n_jobs=2))])
        scores[family] = cross_val_score(pipeline, data, y, cv=cv, scoring="roc_auc")
    return scores


def report(metrics: TuneMetrics, choice: TuneChoice, scores: dict[str, np.ndarray]) -> bool:
    """Print the table and the verdict; True when the choice is within TOLERANCE of the better of logreg/xgboost."""
    n = len(next(iter(scores.values())))
    print(
        f"| family | tune CV ROC-AUC (train split) | repeated CV ROC-AUC mean ± std | vs xgboost (mean, won of {n}) |"
    )
    print("|---|---|---|---|")
    for family, s in scores.items():
        d = s - scores["xgboost"]
        versus = "-" if family == "xgboost" else f"{d.mean():+.4f}, {int((d > 0).sum())}"
        print(
            f"| {family} | {metrics.families[family].cv_roc_auc_mean:.4f} | {s.mean():.4f} ± {s.std():.4f} | {versus} |"
        )
    better = max(("logreg", "xgboost"), key=lambda f: scores[f].mean())
    gap = scores[better].mean() - scores[choice.model].mean()
    print(f"\nauto choice: {choice.model} ({choice.reason})")
    print(f"better of logreg and xgboost in repeated CV: {better} ({scores[better].mean():.4f})")
    held = gap <= TOLERANCE
    print(f"choice within {TOLERANCE} of it: {'yes' if held else 'NO'} (behind by {gap:+.4f})")
    return held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("conf/contracts/telco_churn.yaml"), help="a contract file")
    parser.add_argument("--n-trials", type=int, default=None, help="tuning budget per family (default: conf/)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tabrepro-choice-") as tmp:
        work = Path(tmp)
        params = tune_in(work, args.data.stem, args.n_trials)
        reports = work / read_section(params, "paths", PathsParams).tune_reports
        metrics, choice = (
            read_artefact(reports / "metrics.json", TuneMetrics),
            read_artefact(reports / "choice.json", TuneChoice),
        )
        if set(choice.families) != set(SIMPLEST_FIRST):
            raise SystemExit(f"conf/ does not default to model: auto (families searched: {sorted(choice.families)})")
        scores = repeated_cv(work, params, choice, folds=args.folds, repeats=args.repeats)
    raise SystemExit(0 if report(metrics, choice, scores) else 1)


if __name__ == "__main__":
    main()
