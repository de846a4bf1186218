"""Multiclass metrics, baselines and CIs: pure functions of class indices and (n, K) probabilities.

Columns of every probability matrix are the contract's classes in order (``target.classes``); labels are the
argmax (no threshold). Baselines on the same rows: the train split's class prior for everyone and an untuned
multinomial logistic regression (the linear model the gate compares the model with).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, log_loss, precision_score, recall_score, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from tabrepro.config.params import BootstrapParams
from tabrepro.evaluation.uncertainty import Metric, ci_over, paired_difference, resample_rows
from tabrepro.training.modeling import build_logistic, fit_for_prediction

HIGHER_IS_BETTER = {"log_loss": False, "accuracy": True, "f1_macro": True, "f1_weighted": True, "roc_auc_ovr": True}


def multiclass_log_loss(y: np.ndarray, proba: np.ndarray, *, n_classes: int) -> float:
    """Log-loss against every class, the rows renormalised in float64: float32 models (XGBoost, float32 features)
    give rows that sum to 1 only to float32 precision, which scikit-learn warns about."""
    p = np.asarray(proba, dtype=np.float64)
    return float(log_loss(y, p / p.sum(axis=1, keepdims=True), labels=list(range(n_classes))))


def metric_functions(n_classes: int) -> dict[str, Metric]:
    """Each headline metric as ``f(y, proba)``, labels fixed to ``range(n_classes)`` so a resample is scored
    against every class."""
    labels = list(range(n_classes))
    return {
        "log_loss": lambda y, p: multiclass_log_loss(y, p, n_classes=n_classes),
        "accuracy": lambda y, p: float(accuracy_score(y, p.argmax(axis=1))),
        "f1_macro": lambda y, p: float(f1_score(y, p.argmax(axis=1), labels=labels, average="macro", zero_division=0)),
        "f1_weighted": lambda y, p: float(
            f1_score(y, p.argmax(axis=1), labels=labels, average="weighted", zero_division=0)
        ),
        "roc_auc_ovr": lambda y, p: float(roc_auc_score(y, p, multi_class="ovr", average="macro", labels=labels)),
    }


def per_class(y: np.ndarray, proba: np.ndarray, classes: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Precision, recall and predicted rate of each class (keyed by its label)."""
    labels, pred = list(range(len(classes))), proba.argmax(axis=1)
    precision = precision_score(y, pred, labels=labels, average=None, zero_division=0)
    recall = recall_score(y, pred, labels=labels, average=None, zero_division=0)
    return {
        c: {"precision": float(precision[i]), "recall": float(recall[i]), "predicted_rate": float(np.mean(pred == i))}
        for i, c in enumerate(classes)
    }


def top_label_ece(y: np.ndarray, proba: np.ndarray, *, bins: int = 10) -> float:
    """Top-label ECE: row-weighted mean |accuracy - confidence| of the argmax over equal-width confidence bins."""
    confidence, correct = proba.max(axis=1), (proba.argmax(axis=1) == y).astype(float)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    gaps = np.bincount(which, weights=correct - confidence, minlength=bins)
    return float(np.abs(gaps).sum() / len(y))


def reliability_points(y: np.ndarray, proba: np.ndarray, *, bins: int = 10) -> list[dict[str, float]]:
    """Top-label reliability rows for ``dvc plots``: mean confidence and accuracy per non-empty bin."""
    confidence, correct = proba.max(axis=1), (proba.argmax(axis=1) == y).astype(float)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    return [
        {"mean_confidence": float(confidence[which == b].mean()), "accuracy": float(correct[which == b].mean())}
        for b in range(bins)
        if np.any(which == b)
    ]


def multiclass_baselines(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, *, n_classes: int
) -> dict[str, np.ndarray]:
    """(n, K) probabilities of each baseline on ``x_test``, fitted on the train split only: the class prior and the
    logreg family's pipeline (``build_logistic``, Newton-Cholesky, multinomial for K > 2)."""
    prior = np.bincount(y_train, minlength=n_classes) / len(y_train)
    logistic = Pipeline([("scale", StandardScaler()), ("clf", build_logistic({}, seed=0))])
    fitted = fit_for_prediction(logistic, x_train, y_train)
    # float32 features give float32 probabilities, whose rows sum to 1 only to float32 precision: renormalised in
    # float64 so log-loss sees probabilities (and warns about none)
    proba = np.asarray(fitted.predict_proba(x_test), dtype=np.float64)
    return {"prior": np.tile(prior, (len(x_test), 1)), "logistic": proba / proba.sum(axis=1, keepdims=True)}


def score_multiclass(
    y_test: np.ndarray,
    proba: np.ndarray,
    baselines: dict[str, np.ndarray],
    boot: BootstrapParams,
    *,
    classes: tuple[str, ...],
    bins: int = 10,
) -> dict[str, Any]:
    """The model's metrics with CIs, per class, top-label ECE, each baseline's metrics, and the paired
    (model - logistic) and (model - prior) log-loss differences with CIs, on the same resamples."""
    k = len(classes)
    metrics = metric_functions(k)
    diffs = {f"log_loss_diff_{b}": np.stack([proba, baselines[b]], axis=1) for b in ("logistic", "prior")}
    tests = {**metrics, **dict.fromkeys(diffs, paired_difference(metrics["log_loss"]))}
    resamples = resample_rows(y_test, n=boot.n, seed=boot.seed, keep=lambda y: len(np.unique(y)) == k)
    intervals = ci_over(resamples, y_test, {**dict.fromkeys(metrics, proba), **diffs}, tests, level=boot.level)
    loss = metrics["log_loss"]
    return {
        **{name: f(y_test, proba) for name, f in metrics.items()},
        **{f"{name}_ci": intervals[name] for name in metrics},
        "ece": top_label_ece(y_test, proba, bins=bins),
        "n": len(y_test),
        "per_class": per_class(y_test, proba, classes),
        "vs_baselines": {
            b: {
                "log_loss_diff": loss(y_test, proba) - loss(y_test, baselines[b]),
                "log_loss_diff_ci": intervals[f"log_loss_diff_{b}"],
            }
            for b in ("logistic", "prior")
        },
        "baselines": {name: {m: f(y_test, p) for m, f in metrics.items()} for name, p in baselines.items()},
        "bootstrap": {"n": boot.n, "seed": boot.seed, "level": boot.level},
    }
