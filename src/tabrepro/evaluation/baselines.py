"""Reference models scored on the same test rows as the real one, so a metric has something to be compared with.

- ``majority``: predicts the train split's positive rate for everyone (ROC-AUC 0.5 by construction).
- ``logistic``: a plain, untuned logistic regression on the same features (scaled), the classic strong baseline
  for tabular churn data; the promotion gate compares the model with it. It is solved to the optimum (the logreg
  family's tight solver), so its scores do not depend on the CPU's BLAS kernels.
"""

from __future__ import annotations

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from tabrepro.training.modeling import build_logistic, fit_for_prediction


def build_logistic_baseline() -> Pipeline:
    """The UNFITTED logistic baseline: scaler and a logistic regression with the default C, solved tightly."""
    return Pipeline([("scale", StandardScaler()), ("clf", build_logistic({}, seed=0))])


def fit_baseline_scores(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> dict[str, np.ndarray]:
    """Positive-class scores of each baseline on ``x_test``, fitted on the train split only."""
    if len(np.unique(y_train)) < 2:
        raise ValueError("baselines need both classes in the train split")
    majority = np.full(len(x_test), float(np.mean(y_train)))
    logistic = fit_for_prediction(build_logistic_baseline(), x_train, y_train)
    return {"majority": majority, "logistic": logistic.predict_proba(x_test)[:, 1]}
