"""The one-SE rule of ``model: auto`` per task (issue 21): is the simpler family chosen only when it is as good?

For each table: repeated 3-fold CV (5 repeats, the same folds for every family: paired), stratified by class or,
for regression, by the target's quantile bins (``make_folds``'s rule); each family with its conf/model/ params
(untuned; XGBoost with 400 rounds instead of early stopping), scored by the task's default objective (binary
ROC-AUC, multiclass log-loss, regression RMSE), preprocessed inside each fold (numeric median-imputed,
categorical one-hot). Prints, per table, the family ``choose_family`` picks on those 15 paired scores, the better
of the linear family and XGBoost, their paired difference and its SE, and whether it is within one SE:

    .venv/bin/python bench/model_choice_tasks.py [--repeats 5] [--folds 3]

Until the new data sets are in data/raw (task-data), the bench reads them from /work/shared/data/extra.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import OneHotEncoder

from tabrepro.config.params import FAMILY_TASKS
from tabrepro.training.modeling import build_model, fit_for_prediction, predict_output
from tabrepro.training.objectives import objective_for
from tabrepro.training.search import make_folds
from tabrepro.training.selection import choose_family, paired_difference, simplest_first

EXTRA = Path("/work/shared/data/extra")
# file, target column, task, columns that are not features, the positive label (binary)
TABLES = {
    "telco_churn": ("data/raw/telco_customer_churn.csv", "Churn", "binary", ["customerID"], "Yes"),
    "penguins": ("penguins.csv", "species", "multiclass", [], None),
    "islr_carseats": ("islr_carseats.csv", "Sales", "regression", [], None),
    "islr_wage": ("islr_wage.csv", "wage", "regression", ["logwage"], None),  # logwage IS the target
}
DEFAULT_OBJECTIVE = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}


def load_table(name: str) -> tuple[pd.DataFrame, np.ndarray, str]:
    file, target, task, drop, positive = TABLES[name]
    path = Path(file) if Path(file).is_file() else Path("data/raw") / file
    frame = pd.read_csv(path if path.is_file() else EXTRA / file)
    frame = frame.dropna(subset=[target])
    y_raw = frame[target]
    if task == "binary":
        y = (y_raw == positive).to_numpy(dtype=np.int64)
    elif task == "multiclass":
        y = pd.Categorical(y_raw, categories=sorted(y_raw.unique())).codes.astype(np.int64)
    else:
        y = y_raw.to_numpy(dtype=np.float64)
    x = frame.drop(columns=[target, *drop, *[c for c in frame.columns if c.startswith("Unnamed")]])
    for column in x.select_dtypes(exclude="number").columns:  # numbers exported as text (Telco's TotalCharges)
        numbers = pd.to_numeric(x[column].str.strip(), errors="coerce")
        if numbers.notna().mean() > 0.95:
            x[column] = numbers
    return x, y, task


def preprocessor(x: pd.DataFrame) -> ColumnTransformer:
    categorical = list(x.select_dtypes(exclude="number").columns)
    numeric = [c for c in x.columns if c not in categorical]
    encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float32)
    return ColumnTransformer([("num", SimpleImputer(strategy="median"), numeric), ("cat", encoder, categorical)])


def family_params() -> dict[str, dict]:
    params = {f: yaml.safe_load(Path(f"conf/model/{f}.yaml").read_text())["params"] for f in FAMILY_TASKS}
    params["xgboost"]["n_estimators"] = 400
    return params


def scores_of(x: pd.DataFrame, y: np.ndarray, task: str, *, folds: int, repeats: int) -> dict[str, list[float]]:
    objective = objective_for(task, DEFAULT_OBJECTIVE[task])
    n_classes = int(y.max()) + 1 if task != "regression" else 2
    families = simplest_first(task)
    params, scores = family_params(), {f: [] for f in families}
    for repeat in range(repeats):
        for fit_idx, held_idx in make_folds(y, k=folds, seed=repeat, task=task):
            pre = preprocessor(x).fit(x.iloc[fit_idx])
            x_fit = np.asarray(pre.transform(x.iloc[fit_idx]), dtype=np.float32)
            x_held = np.asarray(pre.transform(x.iloc[held_idx]), dtype=np.float32)
            for family in families:
                model = build_model(family, params[family], task=task, seed=repeat, n_jobs=2, n_classes=n_classes)
                fitted = fit_for_prediction(model, x_fit, y[fit_idx])
                scores[family].append(objective.score(y[held_idx], predict_output(fitted, x_held, task=task)))
    return scores


def report(name: str, task: str, scores: dict[str, list[float]], seconds: float) -> None:
    objective = objective_for(task, DEFAULT_OBJECTIVE[task])
    choice = choose_family(scores, direction=objective.direction, label=objective.label)
    linear = simplest_first(task)[0]
    sign = objective.sign
    better = max((linear, "xgboost"), key=lambda f: sign * float(np.mean(scores[f])))
    other = "xgboost" if better == linear else linear
    diff, se = paired_difference(scores[better], scores[other], sign=sign)
    means = ", ".join(f"{f} {np.mean(s):.4f}" for f, s in scores.items())
    print(
        f"| {name} | {task} | {objective.name} ({objective.direction}) | {means} | {choice.family} | {better} | "
        f"{other} behind by {diff:+.4f} | {se:.4f} | {'yes' if diff <= se else 'no'} | {seconds:.0f} s |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", nargs="*", default=list(TABLES), choices=list(TABLES))
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(
        "| table | task | objective | mean CV score per family | auto choice | better of linear and xgboost | "
        "paired difference | SE | within one SE | time |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in args.tables:
        started = time.perf_counter()
        x, y, task = load_table(name)
        scores = scores_of(x, y, task, folds=args.folds, repeats=args.repeats)
        report(name, task, scores, time.perf_counter() - started)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
