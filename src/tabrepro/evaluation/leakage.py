"""Leakage alarm: how well each feature ALONE predicts the target.

A feature that alone ranks the target almost perfectly (a copy of the label, a field filled in after the
outcome) makes a model look brilliant and fail in production. Each contract feature is turned into one score
learned on the train split (numeric: its value; boolean: 0/1; categorical: the level's positive rate on train)
and its ROC-AUC is measured on the test split, direction-free (max(auc, 1 - auc)).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from tabrepro.contract.spec import DataContract


def single_feature_auc(train: pd.DataFrame, test: pd.DataFrame, contract: DataContract) -> dict[str, float]:
    """``{feature: ROC-AUC of that feature alone on test}``, highest first."""
    y_train = train[contract.target.column].to_numpy()
    y_test = test[contract.target.column].to_numpy()
    aucs = {}
    for name, spec in contract.features.items():
        if name not in test.columns:
            continue
        if spec.type == "categorical":
            score = _target_rate(train[name], y_train, test[name])
        else:
            fill = float(np.nanmedian(train[name].to_numpy(dtype=float)))
            score = test[name].to_numpy(dtype=float)
            score = np.where(np.isnan(score), fill, score)
        auc = float(roc_auc_score(y_test, score))
        aucs[name] = max(auc, 1.0 - auc)
    return dict(sorted(aucs.items(), key=lambda kv: -kv[1]))


def _target_rate(train_values: pd.Series, y_train: np.ndarray, test_values: pd.Series) -> np.ndarray:
    keys = train_values.fillna("").astype(str)
    rates = pd.Series(y_train, index=keys.index).groupby(keys.to_numpy()).mean()
    mapped = test_values.fillna("").astype(str).map(rates)
    rate: np.ndarray = mapped.fillna(float(np.mean(y_train))).to_numpy(dtype=float)
    return rate
