"""Numbers that do not depend on the CPU (issue 19) and a threshold that ties cannot flip (issue 25).

Another CPU adds in another order (OpenBLAS' AVX2 and AVX-512 kernels, more threads): its results differ from ours
in the last digits. These tests stand in for it: (a) features one ulp away give the same logistic fits and the
same written metrics; (b) fold scores 1e-12 away give the same search, choice and threshold; (c) scores tied at
the threshold and float32 noise around it flip no label in the parity gate.
"""

from __future__ import annotations

import warnings

import numpy as np
import optuna
import pytest
import xgboost as xgb
from sklearn.exceptions import ConvergenceWarning

from tabrepro.config.params import EvaluateParams, ModelParams, TuneParams
from tabrepro.config.precision import rounded, rounded_between
from tabrepro.contract.policy import CostMatrix
from tabrepro.evaluation.baselines import build_logistic_baseline, fit_baseline_scores
from tabrepro.evaluation.metrics import choose_threshold
from tabrepro.stages.evaluate import score_test_split
from tabrepro.training import search
from tabrepro.training.modeling import build_model, fit_for_prediction, fit_model
from tabrepro.training.onnx_export import PackagingError, check_parity
from tabrepro.training.selection import search_families

COST = CostMatrix(false_negative=500, false_positive=50, true_positive=50, true_negative=0)


def _table(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A Telco-like float32 table: three numbers, and one-hot groups that share a level (six services that are
    "no internet service" exactly when the internet group says so): columns equal to each other, which leave the
    fit a flat direction that only the L2 penalty closes, as in Telco's features."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 72, rows).astype(float)
    monthly = rng.uniform(18, 120, rows).round(2)
    numbers = np.column_stack([tenure, monthly, tenure * monthly + rng.normal(0, 50, rows)])
    internet, contract = rng.integers(0, 3, rows), rng.integers(0, 3, rows)
    services = np.where(internet[:, None] == 2, 2, rng.integers(0, 2, (rows, 6)))
    onehot = np.column_stack([np.eye(3)[internet], np.eye(3)[contract], *(np.eye(3)[s] for s in services.T)])
    logit = -0.04 * tenure + 0.02 * monthly - 1.2 * (contract == 2) + 0.6 * (internet == 1) - 0.3 * services[:, 0]
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit + 1.0))).astype(int)
    return np.column_stack([numbers, onehot]).astype(np.float32), y


def _one_ulp(x: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``x`` in float64, and the same with every value moved one ulp up or down (at random)."""
    x = x.astype(np.float64)
    up = np.random.default_rng(seed).random(x.shape) < 0.5
    return x, np.where(up, np.nextafter(x, np.inf), np.nextafter(x, -np.inf))


def _coefficients(pipeline) -> np.ndarray:
    clf = pipeline.steps[-1][1]
    return np.concatenate([clf.coef_.ravel(), clf.intercept_])


def _relative_change(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(a)))


# --- (a) the logistic fits ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("c", "class_weight"), [(0.001, None), (1.0, None), (100.0, "balanced"), (100.0, None)])
def test_the_logreg_family_moves_less_than_1e_9_when_the_features_move_one_ulp(c, class_weight):
    x, y = _table(1200, seed=5)
    exact, nudged = _one_ulp(x)
    params = {"C": c, "class_weight": class_weight}
    fits = [fit_for_prediction(build_model("logreg", params, seed=0), xx, y) for xx in (exact, nudged)]
    assert _relative_change(*map(_coefficients, fits)) < 1e-9


def test_the_logistic_fit_is_solved_in_float64_to_its_tolerance_on_float32_features():
    # The cause measured on Telco: lbfgs ran in float32 on float32 features and stopped at tol 1e-4; with OpenBLAS'
    # Haswell instead of SkylakeX kernels 28 of 60 fold ROC-AUCs moved (by up to 4.7e-5), coefficients by 2 %.
    x, y = _table(1200, seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # no fallback from Newton-Cholesky to lbfgs
        for params in ({"C": 0.001}, {"C": 100.0, "class_weight": "balanced"}):
            clf = fit_for_prediction(build_model("logreg", params, seed=0), x, y).steps[-1][1]
            assert clf.coef_.dtype == np.float64 and clf.n_iter_[0] < clf.max_iter


def test_the_logistic_baseline_moves_less_than_1e_9_when_the_features_move_one_ulp():
    x, y = _table(1200, seed=6)
    fits = [fit_for_prediction(build_logistic_baseline(), xx, y) for xx in _one_ulp(x)]
    assert _relative_change(*map(_coefficients, fits)) < 1e-9


def test_the_written_metrics_are_identical_when_the_features_move_one_ulp():
    x, y = _table(2400, seed=7)
    train, val, test = slice(0, 1600), slice(1600, 2000), slice(2000, 2400)
    params = EvaluateParams.model_validate({"bootstrap": {"n": 50, "seed": 1, "level": 0.9}})
    written = []
    for xx in _one_ulp(x):
        model = fit_for_prediction(build_model("logreg", {"C": 0.5}, seed=0), xx[train], y[train])
        p_val, p_test = (model.predict_proba(xx[s])[:, 1] for s in (val, test))
        baselines = fit_baseline_scores(xx[train], y[train], xx[test])
        written.append(score_test_split(y[val], p_val, y[test], p_test, baselines, params, cost=COST))
    assert written[0] == written[1]


# --- (b) the search, the choice and the threshold ---------------------------------------------------------------

AUTO = {
    "name": "auto",
    "candidates": {
        "logreg": {
            "name": "logreg",
            "params": {"C": 1.0},
            "search_space": {
                "C": {"distribution": "log_float", "low": 0.001, "high": 100},
                "class_weight": {"distribution": "categorical", "choices": [None, "balanced"]},
            },
        },
        "random_forest": {
            "name": "random_forest",
            "params": {"n_estimators": 15, "max_depth": 4},
            "search_space": {"min_samples_leaf": {"distribution": "int", "low": 1, "high": 40}},
        },
        "xgboost": {
            "name": "xgboost",
            "early_stopping_rounds": 10,
            "params": {"n_estimators": 80, "max_depth": 2, "learning_rate": 0.1},
            "search_space": {"min_child_weight": {"distribution": "log_float", "low": 1, "high": 50}},
        },
    },
}


class _Noise:
    """Multiplies each value by 1 + or - 1e-12 (a seeded sign per value): what another CPU's sums look like."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def __call__(self, value: float) -> float:
        return float(value) * (1 + self.rng.choice([-1.0, 1.0]) * 1e-12)


class _NoisyLog(xgb.callback.TrainingCallback):
    """Hands ``inner`` (the pruning callback) the per-round CV scores with noise."""

    def __init__(self, inner: xgb.callback.TrainingCallback, noise: _Noise) -> None:
        super().__init__()
        self.inner, self.noise = inner, noise

    def after_iteration(self, model, epoch, evals_log) -> bool:
        noisy = {
            data: {name: [_noisy_entry(v, self.noise) for v in values] for name, values in metrics.items()}
            for data, metrics in evals_log.items()
        }
        return self.inner.after_iteration(model, epoch, noisy)


def _noisy_entry(value, noise: _Noise):
    return (noise(value[0]), value[1]) if isinstance(value, tuple) else noise(value)


def _perturb_scores(monkeypatch: pytest.MonkeyPatch, noise: _Noise) -> None:
    """Every fold ROC-AUC (scikit-learn's, and xgboost.cv's per round, its means and the pruner's) with noise."""
    auc, cv = search.roc_auc_score, xgb.cv

    def noisy_cv(*args, callbacks=(), **kwargs):
        wrapped = [_NoisyLog(c, noise) if isinstance(c, search._PruneOnRound) else c for c in callbacks]
        history = cv(*args, callbacks=wrapped, **kwargs)
        return history.assign(**{"test-auc-mean": [noise(v) for v in history["test-auc-mean"]]})

    monkeypatch.setattr(search, "roc_auc_score", lambda *a, **k: noise(auc(*a, **k)))
    monkeypatch.setattr(search.xgb, "cv", noisy_cv)


def _search_path(x: np.ndarray, y: np.ndarray) -> tuple[dict, str, dict, float]:
    model = ModelParams.model_validate(AUTO)
    tune = TuneParams(n_trials=8, cv_folds=3, n_startup_trials=3)
    names = {f.name: f"s-{f.name}" for f in model.families}
    storage = optuna.storages.InMemoryStorage()
    found = search_families(model, tune, x, y, storage=storage, study_names=names, seed=11, n_jobs=1)
    path = {
        family: [(t.params, t.state, t.value) for t in study.get_trials(deepcopy=False)]
        for family, study in found.studies.items()
    }
    return path, found.choice.family, found.chosen.params, found.chosen.cv_mean


def test_scores_1e_12_apart_give_the_same_search_choice_and_threshold(monkeypatch):
    x, y = _table(360, seed=8)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    clean = _search_path(x[:240], y[:240])
    with monkeypatch.context() as patched:
        _perturb_scores(patched, _Noise(seed=3))
        noisy = _search_path(x[:240], y[:240])
    assert noisy[0] == clean[0]  # every trial of every family: its params, state and value
    assert noisy[1:] == clean[1:]  # the family chosen, its params and CV score
    family = ModelParams.model_validate(AUTO).family(clean[1])
    fitted = fit_model(build_model(family.name, clean[2], seed=0), x[:240], y[:240], x[240:], y[240:]).model
    p_val = fitted.predict_proba(x[240:])[:, 1]
    noise = _Noise(seed=4)
    for policy in ("max_f1", "min_cost"):
        t = choose_threshold(y[240:], p_val, policy=policy, cost=COST)
        assert choose_threshold(y[240:], np.array([noise(p) for p in p_val]), policy=policy, cost=COST) == t


# --- (c) ties at the threshold and float32 noise around it -----------------------------------------------------


def _titanic_like() -> tuple[np.ndarray, np.ndarray]:
    """Val scores of a model of a few categorical features: four distinct scores, each shared by many rows."""
    rows, positives = [40, 30, 20, 10], [4, 16, 14, 9]
    scores = np.repeat([0.11, 0.2683, 0.52, 0.91], rows)
    labels = np.concatenate([np.r_[np.zeros(n - k), np.ones(k)] for n, k in zip(rows, positives, strict=True)])
    return labels.astype(int), scores


@pytest.mark.parametrize("policy", ["max_f1", "min_cost"])
def test_the_threshold_lies_strictly_between_distinct_tied_scores(policy):
    y, p = _titanic_like()
    t = choose_threshold(y, p, policy=policy, cost=COST)
    distinct = np.unique(p)
    assert t not in distinct
    below, above = distinct[distinct < t], distinct[distinct > t]
    assert below.size and above.size  # between two scores, not beyond them
    assert t == rounded_between(below.max(), above.min())  # the rounded midpoint
    assert round(t, 6) == t


def test_float32_noise_at_the_threshold_flips_no_label_in_the_parity_gate():
    y, p_val = _titanic_like()
    t = choose_threshold(y, p_val, policy="max_f1")
    assert t == rounded_between(0.11, 0.2683)  # the cut is at the tied 0.2683: 30 val rows sit on that score
    p_test = np.repeat(np.unique(p_val), 25)  # test rows tied with every val score
    p_onnx = p_test.astype(np.float32).astype(np.float64)  # what ONNX computes: the float32 neighbour
    p_onnx[::2] = np.nextafter(p_test[::2].astype(np.float32), np.float32(0)).astype(np.float64)  # and below it
    report = check_parity(p_test, p_onnx, threshold=t, tolerance=1e-5)
    assert report.label_flips == 0 and report.near_threshold == 0  # served labels = evaluated labels
    # the old threshold, equal to the tied score: float32 puts rows on both sides of it (issue 25: "5 label flips")
    old = 0.2683
    assert np.sum((p_test >= old) != (p_onnx >= old)) > 0
    assert check_parity(p_test, p_onnx, threshold=old, tolerance=1e-5).near_threshold == 25


def test_rows_within_the_tolerance_of_the_threshold_are_counted_not_compared():
    t = 0.3
    p_pipeline = np.array([0.1, t - 4e-6, t + 2e-6, t, 0.9])
    p_onnx = np.array([0.1, t + 1e-6, t - 1e-6, t - 3e-6, 0.9])  # three rows change side, each by < 1e-5
    report = check_parity(p_pipeline, p_onnx, threshold=t, tolerance=1e-5)
    assert report.model_dump() == {"max_abs_diff": pytest.approx(5e-6), "label_flips": 0, "near_threshold": 3,
                                   "rows": 5, "tolerance": 1e-5}  # fmt: skip
    with pytest.raises(PackagingError, match=r"max \|Δp\| 2e-05"):  # past the tolerance: refused as before
        check_parity(p_pipeline, p_onnx + np.array([0, 0, 0, 0, -2e-5]), threshold=t, tolerance=1e-5)


def test_rounded_between_keeps_more_places_only_when_two_scores_are_closer_than_the_precision():
    assert rounded_between(0.2, 0.2683) == 0.23415
    assert rounded_between(0.1234561, 0.1234563) == 0.1234562  # 6 places cannot fall between them
    low, high = 0.5, float(np.nextafter(0.5, 1.0))
    assert rounded_between(low, high) == high  # nothing lies between two neighbouring floats: the upper one
    assert rounded(-1e-9) == 0.0 and str(rounded(-1e-9)) == "0.0"  # no "-0.0" in a metrics file


def test_a_tiny_written_difference_keeps_two_significant_digits_and_drops_its_noise():
    from tabrepro.config.precision import significant

    assert significant(4.172325134277344e-07) == 4.2e-07
    assert significant(4.172325134277344e-07) == significant(4.1723251342e-07 * (1 + 1e-9))
    assert significant(0.0) == 0.0
    assert significant(1.0e-5) == 1.0e-5
