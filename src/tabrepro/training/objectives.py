"""The tuning objective of each task (``tune.objective``): its score, its direction and its XGBoost metric.

The search (Optuna's study direction, the pruner, the XGBoost CV metric and early stopping) and the one-SE rule of
``model: auto`` all read the direction from here, so a minimised objective (log-loss, RMSE, MAE) is never
compared as if higher were better. ``score`` takes the labels and ``predict_output``'s values for the task.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from sklearn.metrics import log_loss, mean_absolute_error, roc_auc_score, root_mean_squared_error

from tabrepro.config.params import OBJECTIVES
from tabrepro.errors import ConfigError

Direction = Literal["maximize", "minimize"]


@dataclass(frozen=True)
class Objective:
    """One CV score: ``name`` (as in params), a label for messages, its direction and XGBoost's metric of it."""

    name: str
    label: str
    direction: Direction
    xgb_metric: str
    score: Callable[[np.ndarray, np.ndarray], float]

    @property
    def sign(self) -> int:
        """+1 when higher is better, -1 when lower is: ``sign * score`` is always to be maximised."""
        return 1 if self.direction == "maximize" else -1


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    return float(log_loss(y, p, labels=[0, 1]))


def _multiclass_log_loss(y: np.ndarray, p: np.ndarray) -> float:
    # float32 probabilities (XGBoost) sum to 1 only within ~1e-7: scikit-learn warns; renormalised in float64
    p = np.asarray(p, dtype=np.float64)
    return float(log_loss(y, p / p.sum(axis=1, keepdims=True), labels=np.arange(p.shape[1])))


def _ovr_macro_auc(y: np.ndarray, p: np.ndarray) -> float:
    return float(roc_auc_score(y, p, multi_class="ovr", average="macro", labels=np.arange(p.shape[1])))


_BY_TASK: dict[tuple[str, str], Objective] = {
    ("binary", "roc_auc"): Objective("roc_auc", "ROC-AUC", "maximize", "auc", lambda y, p: float(roc_auc_score(y, p))),
    ("binary", "log_loss"): Objective("log_loss", "log-loss", "minimize", "logloss", lambda y, p: _log_loss(y, p)),
    ("multiclass", "log_loss"): Objective("log_loss", "log-loss", "minimize", "mlogloss", _multiclass_log_loss),
    # XGBoost has no macro one-vs-rest AUC: its rounds are early-stopped on mlogloss, the folds scored here
    ("multiclass", "roc_auc_ovr_macro"): Objective(
        "roc_auc_ovr_macro", "macro OvR ROC-AUC", "maximize", "mlogloss", _ovr_macro_auc
    ),
    ("regression", "rmse"): Objective(
        "rmse", "RMSE", "minimize", "rmse", lambda y, p: float(root_mean_squared_error(y, p))
    ),
    ("regression", "mae"): Objective("mae", "MAE", "minimize", "mae", lambda y, p: float(mean_absolute_error(y, p))),
}


def objective_for(task: str, name: str) -> Objective:
    """The objective ``name`` of ``task``; one that does not fit the task is a ConfigError naming the key."""
    found = _BY_TASK.get((task, name))
    if found is None:
        raise ConfigError(
            f"params.yaml: tune.objective.{task}: {name!r} is not an objective of a {task} task; "
            f"one of {list(OBJECTIVES.get(task, ()))}"
        )
    return found


@dataclass(frozen=True)
class Scoring:
    """What a search scores: the task, its objective and (classification) the number of classes."""

    task: str
    objective: Objective
    n_classes: int = 2


BINARY = Scoring("binary", _BY_TASK[("binary", "roc_auc")])


def scoring_for(task: str, objective: str, *, n_classes: int = 2) -> Scoring:
    """The ``Scoring`` of ``task`` with the objective named ``objective`` (``tune.objective.<task>``)."""
    return Scoring(task, objective_for(task, objective), n_classes)
