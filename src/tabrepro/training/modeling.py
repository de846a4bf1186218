"""Model factory, fitting and safe persistence, shared by tune and train.

``build_model`` returns an UNFITTED estimator for a family declared in ``conf/model/``; unknown hyper-parameter
names and values outside the family's ranges (``tabrepro.training.hyperparameters``) are refused before anything
is fitted. Models are saved in their library's own safe format (XGBoost JSON, scikit-learn objects with skops;
never pickle) next to a ``meta.json`` that records the file's sha256, which ``load_model`` verifies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from xgboost import XGBClassifier, XGBModel, XGBRegressor

from tabrepro.artefacts import ModelMeta, read_artefact, sha256_file
from tabrepro.errors import TabreproError
from tabrepro.io.persistence import dump_skops, load_skops
from tabrepro.io.staging import write_json
from tabrepro.training.hyperparameters import check_hyperparameters

# Fixed settings of each family that are not searched: determinism and the metrics logged per round.
_XGB_FIXED = {"tree_method": "hist", "eval_metric": ["logloss", "auc"]}
_XGB_MULTICLASS = {"tree_method": "hist", "objective": "multi:softprob", "eval_metric": ["mlogloss", "merror"]}
_XGB_REGRESSION = {"tree_method": "hist", "objective": "reg:squarederror", "eval_metric": ["rmse", "mae"]}
# Logistic regression solved to the optimum, not to lbfgs' default tolerance (1e-4, where it stops depends on
# the last digits of BLAS sums and so on the CPU: fold ROC-AUC moved in the 5th digit between AVX2 and AVX-512
# kernels). Newton-Cholesky converges quadratically to max |gradient| <= tol in a few steps: one-ulp changes of
# the features then move the coefficients by about 1e-12 relative (tests/unit/test_numerics.py). A configured
# solver or tol overrides these.
LOGREG_DEFAULTS = {"solver": "newton-cholesky", "tol": 1e-10, "max_iter": 1000}
META_FILE = "meta.json"


class ModelFileError(TabreproError, RuntimeError):
    """A model file is missing, altered (sha256 mismatch) or of an unexpected kind."""


@dataclass
class FitResult:
    """A fitted model and what its fit learned: per-round curves and the chosen number of rounds."""

    model: Any
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    best_iteration: int | None = None


def build_model(
    family: str, params: dict[str, Any], *, task: str = "binary", seed: int, n_jobs: int = 1, n_classes: int = 2
) -> BaseEstimator:
    """Return an UNFITTED estimator of ``family`` for ``task`` with ``params``; linear models get their own scaler.
    Multiclass: multinomial logistic regression, XGBoost ``multi:softprob`` over ``n_classes``; regression: ridge,
    random forest and XGBoost regressors (``reg:squarederror``)."""
    check_hyperparameters(family, params, where="params.yaml: model.params")
    if family == "xgboost":
        return _build_xgboost(params, task=task, seed=seed, n_jobs=n_jobs, n_classes=n_classes)
    if family == "random_forest":
        forest = RandomForestRegressor if task == "regression" else RandomForestClassifier
        return forest(**params, random_state=seed, n_jobs=n_jobs)
    # Linear models need scaled inputs; the scaler is part of the model so the whole pipeline exports as one.
    if family == "ridge":
        # the direct Cholesky solve, named rather than left to "auto": the same solution on every machine
        return Pipeline([("scale", StandardScaler()), ("reg", Ridge(**{"solver": "cholesky", **params}))])
    return Pipeline([("scale", StandardScaler()), ("clf", build_logistic(params, seed=seed))])


def _build_xgboost(params: dict[str, Any], *, task: str, seed: int, n_jobs: int, n_classes: int) -> XGBModel:
    if task == "regression":
        return XGBRegressor(**{**_XGB_REGRESSION, **params}, random_state=seed, n_jobs=n_jobs)
    if task == "multiclass":
        fixed = {**_XGB_MULTICLASS, "num_class": n_classes}
        return XGBClassifier(**{**fixed, **params}, random_state=seed, n_jobs=n_jobs)
    return XGBClassifier(**{**_XGB_FIXED, **params}, random_state=seed, n_jobs=n_jobs)


def predict_output(model: Any, x: np.ndarray, *, task: str) -> np.ndarray:
    """What every consumer scores: binary (n,) P(positive); multiclass (n, K) probabilities in class order;
    regression (n,) predictions. All float64."""
    if task == "regression":
        return np.asarray(model.predict(x), dtype=np.float64)
    probabilities = np.asarray(model.predict_proba(x), dtype=np.float64)
    return probabilities[:, 1] if task == "binary" else probabilities


def build_logistic(params: dict[str, Any], *, seed: int) -> LogisticRegression:
    """An UNFITTED logistic regression solved tightly (``LOGREG_DEFAULTS`` under ``params``); the logreg family and
    the logistic baseline of evaluate both use it."""
    return LogisticRegression(**{**LOGREG_DEFAULTS, **params}, random_state=seed)


def fit_model(
    model: BaseEstimator,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    early_stopping_rounds: int | None = None,
) -> FitResult:
    """Fit ``model``. XGBoost early-stops on val, then is refit with exactly the best number of rounds,
    so the saved model holds only the trees it predicts with (and converts to ONNX unchanged)."""
    if not isinstance(model, XGBModel):
        return FitResult(model=fit_for_prediction(model, x_train, y_train))
    if early_stopping_rounds is None:
        model.fit(x_train, y_train, eval_set=[(x_train, y_train), (x_val, y_val)], verbose=False)
        return FitResult(model=model, curves=eval_curves(model))
    probe = clone(model).set_params(early_stopping_rounds=early_stopping_rounds)
    probe.fit(x_train, y_train, eval_set=[(x_train, y_train), (x_val, y_val)], verbose=False)
    best = int(probe.best_iteration)
    final = clone(model).set_params(n_estimators=best + 1)
    final.fit(x_train, y_train, verbose=False)
    return FitResult(model=final, curves=eval_curves(probe), best_iteration=best)


def fit_for_prediction(model: BaseEstimator, x: np.ndarray, y: np.ndarray) -> BaseEstimator:
    """``model.fit(x, y)``, made reproducible. A logistic pipeline's scaler is fitted on ``x`` as it comes (float32
    features: what the ONNX graph computes), its regression on the scaled rows in float64: on float32 the solver
    cannot reach its tolerance (measured: Newton-Cholesky gave up after 60 to 380 steps and fell back to lbfgs).
    A random forest then predicts on one thread: with several, its trees' probabilities are summed in the order
    the threads finish, so two calls on the same rows differ in the last digit (measured: 20 distinct results in
    20 calls with n_jobs=2). Fitting on several threads gives the same trees."""
    if isinstance(model, Pipeline) and isinstance(model.steps[-1][1], LogisticRegression | Ridge):
        scaled = x
        for _, step in model.steps[:-1]:
            scaled = step.fit_transform(scaled, y)
        model.steps[-1][1].fit(np.asarray(scaled, dtype=np.float64), y)
        return model
    model.fit(x, y)
    if isinstance(model, RandomForestClassifier | RandomForestRegressor):
        model.set_params(n_jobs=1)
    return model


def eval_curves(model: Any) -> dict[str, dict[str, list[float]]]:
    """Per-round metrics of a boosted model fitted with ``eval_set=[train, val]`` (in memory or on Dask)."""
    names = {"validation_0": "train", "validation_1": "val"}
    return {names[k]: {m: list(map(float, v)) for m, v in d.items()} for k, d in model.evals_result().items()}


def save_model(model: BaseEstimator, family: str, directory: str | Path, **info: Any) -> ModelMeta:
    """Write the model in its safe format plus ``meta.json``: family, file, sha256 and ``info`` (the other
    ``ModelMeta`` fields: feature names, best iteration, seed, hyper-parameters, tuning provenance)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if family == "xgboost":
        path = directory / "model.json"
        model.save_model(path)
    else:
        path = directory / "model.skops"
        dump_skops(model, path)
    meta = ModelMeta.model_validate({"family": family, "file": path.name, "sha256": sha256_file(path), **info})
    write_json(directory / META_FILE, meta.model_dump(mode="json", exclude_unset=True))  # only what was given
    return meta


def load_model(directory: str | Path) -> tuple[BaseEstimator, ModelMeta]:
    """Load a saved model after checking its sha256 against ``meta.json``."""
    meta_path = Path(directory) / META_FILE
    meta = read_artefact(meta_path, ModelMeta, error=ModelFileError, hint="model metadata; run the train stage")
    path = meta_path.parent / meta.file
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    actual = sha256_file(path)
    if actual != meta.sha256:
        raise ModelFileError(f"{path}: sha256 {actual} does not match {meta.sha256} in {meta_path}")
    if meta.family == "xgboost":
        model = XGBRegressor() if meta.task == "regression" else XGBClassifier()
        model.load_model(path)
    else:
        model = load_skops(path)
    return model, meta
