"""Leakage alarm for regression and multiclass targets: how well each feature ALONE explains the target.

Each contract feature becomes one prediction learned on the train split: a categorical or boolean feature by its
level's mean target (regression) or class frequencies (multiclass); a numeric one likewise per quantile bin of
train (up to ``BINS``), and for regression also by the best monotone (isotonic, either direction) fit, which
scores about 1 for any monotone transform of the target however skewed (``logwage`` for ``wage``: R² 0.99999 on
islr_wage, where the bins alone lose the tail: 0.915). Regression scores the R² on test, multiclass the macro
one-vs-rest ROC-AUC; missing values are a level.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import r2_score, roc_auc_score

from tabrepro.contract.spec import DataContract

BINS = 20


def single_feature_scores(train: pd.DataFrame, test: pd.DataFrame, contract: DataContract) -> dict[str, float]:
    """``{feature: R² (regression) or macro OvR ROC-AUC (multiclass) of that feature alone on test}``, highest
    first."""
    target, task = contract.target.column, contract.target.task
    y_train, y_test = train[target].to_numpy(), test[target].to_numpy()
    scores: dict[str, float] = {}
    for name, spec in contract.features.items():
        if name not in test.columns:
            continue
        keys_train, keys_test = _keys(train[name], test[name], numeric=spec.type == "numeric")
        if task == "regression":
            binned = float(r2_score(y_test, _level_means(keys_train, y_train.astype(float), keys_test)))
            scores[name] = (
                max(binned, _monotone_r2(train[name], y_train, test[name], y_test))
                if spec.type == "numeric"
                else binned
            )
        else:
            k = len(contract.target.labels)
            onehot = np.eye(k)[y_train.astype(int)]
            proba = np.column_stack([_level_means(keys_train, onehot[:, c], keys_test) for c in range(k)])
            scores[name] = float(
                roc_auc_score(y_test, proba, multi_class="ovr", average="macro", labels=list(range(k)))
            )
    return dict(sorted(scores.items(), key=lambda kv: -kv[1]))


def _monotone_r2(train: pd.Series, y_train: np.ndarray, test: pd.Series, y_test: np.ndarray) -> float:
    """R² on test of the best monotone function of the feature fitted on train (isotonic, either direction): a
    log or any other monotone transform of the target scores about 1 however skewed the target (the bins lose its
    tail). Rows missing the feature are predicted the train mean."""
    x_train, x_test = train.to_numpy(dtype=float), test.to_numpy(dtype=float)
    seen = ~np.isnan(x_train)
    if seen.sum() < 2:
        return float("-inf")
    best = float("-inf")
    for increasing in (True, False):
        fit = IsotonicRegression(increasing=increasing, out_of_bounds="clip").fit(x_train[seen], y_train[seen])
        pred = np.where(np.isnan(x_test), float(np.mean(y_train)), fit.predict(np.nan_to_num(x_test)))
        best = max(best, float(r2_score(y_test, pred)))
    return best


def _keys(train: pd.Series, test: pd.Series, *, numeric: bool) -> tuple[np.ndarray, np.ndarray]:
    """Level names of each row: the value, or for a numeric feature its quantile bin on train."""
    if not numeric:
        return train.fillna("").astype(str).to_numpy(), test.fillna("").astype(str).to_numpy()
    values = train.to_numpy(dtype=float)
    edges: np.ndarray = (
        np.unique(np.nanquantile(values, np.linspace(0, 1, BINS + 1)[1:-1]))
        if np.isfinite(values).any()
        else np.array([])
    )

    def bins(column: pd.Series) -> np.ndarray:
        x = column.to_numpy(dtype=float)
        return np.where(np.isnan(x), "nan", np.searchsorted(edges, x, side="right").astype(str))

    return bins(train), bins(test)


def _level_means(keys_train: np.ndarray, values: np.ndarray, keys_test: np.ndarray) -> np.ndarray:
    """The train mean of ``values`` per level, for each test row (a level unseen in train: the overall mean)."""
    means = pd.Series(values).groupby(keys_train).mean()
    mapped: np.ndarray = pd.Series(keys_test).map(means).fillna(float(values.mean())).to_numpy(dtype=float)
    return mapped
