"""Repeated stratified CV ROC-AUC of logistic regression, default XGBoost and the pipeline's tuned XGBoost.

Run after `dvc repro` (it reads the prepared data, models/best_params.json and models/model/meta.json):

    .venv/bin/python bench/quality.py [--folds 5] [--repeats 3]

Each model is a whole pipeline (the contract's preprocessor + the estimator), refit inside every fold, on all
prepared rows (train + val + test). The tuned hyper-parameters were chosen by CV on the train split only, which
overlaps these folds: a mild optimism for the tuned row, stated here rather than hidden.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import RepeatedStratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline
from xgboost import XGBClassifier

from tabrepro.config.compose import compose_config
from tabrepro.config.params import FeaturesParams, ModelParams, PathsParams, load_params, read_section, read_seed
from tabrepro.contract.spec import load_contract
from tabrepro.io.splits import read_splits
from tabrepro.io.staging import read_json
from tabrepro.training.features import build_preprocessor
from tabrepro.training.modeling import build_model


def candidates(params: dict, paths: PathsParams, seed: int) -> dict[str, object]:
    """The three estimators compared: logreg as in conf/model/logreg.yaml, XGBoost's defaults, and the tuned
    XGBoost with the number of rounds that train early-stopped at."""
    best = read_json(paths.best_params)
    meta = read_json(Path(paths.model) / "meta.json")
    if best["model"] != "xgboost":
        raise SystemExit(f"the pipeline's model is {best['model']!r}; run `dvc repro` with model=xgboost first")
    tuned = {**best["params"], "n_estimators": meta["best_iteration"] + 1}  # the rounds train early-stopped at
    logreg = ModelParams.model_validate(compose_config("conf", ["model=logreg"])["model"])
    return {
        "logistic regression": build_model("logreg", logreg.params, seed=seed),
        "XGBoost, default settings": XGBClassifier(random_state=seed, n_jobs=2),
        "XGBoost, tuned by the pipeline": build_model("xgboost", tuned, seed=seed, n_jobs=2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    params = load_params()
    paths = read_section(params, "paths", PathsParams)
    contract = load_contract(params["data"])
    features = read_section(params, "features", FeaturesParams)
    seed = read_seed(params)
    data = pd.concat(read_splits(paths.prepared).values(), ignore_index=True)
    y = data[contract.target.column].to_numpy()
    cv = RepeatedStratifiedKFold(n_splits=args.folds, n_repeats=args.repeats, random_state=seed)
    print(f"{len(data)} rows, {args.folds}-fold stratified CV x {args.repeats} repeats, ROC-AUC\n")
    print("| model | ROC-AUC mean ± std | seconds |\n|---|---|---|")
    for name, estimator in candidates(params, paths, seed).items():
        pipeline = Pipeline(
            [
                ("pre", build_preprocessor(contract, numeric_impute=features.numeric_impute, drop=features.drop)),
                ("model", estimator),
            ]
        )
        started = time.perf_counter()
        scores = cross_val_score(pipeline, data, y, cv=cv, scoring="roc_auc")
        print(f"| {name} | {np.mean(scores):.4f} ± {np.std(scores):.4f} | {time.perf_counter() - started:.1f} |")


if __name__ == "__main__":
    main()
