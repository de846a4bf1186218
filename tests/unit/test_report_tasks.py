"""`tabrepro report` between a regression experiment and its baseline: each metric's direction (lower RMSE is
better), the change column, and `--fail-on` tolerances that take the direction or refuse a contradicting sign."""

from __future__ import annotations

from typing import Any

import pytest

from tabrepro.reporting.markdown import format_change, render_metrics
from tabrepro.reporting.tolerances import (
    ReportError,
    check_tolerances,
    metric_direction,
    parse_tolerances,
)

BASE: dict[str, Any] = {
    "rmse": 33.9,
    "rmse_ci": {"lo": 32.0, "hi": 35.8},
    "mae": 23.1,
    "r2": 0.31,
    "mape": 0.21,
    "vs_baselines": {"ridge": {"rmse_diff": -0.4}},
    "fairness": {"race": {"gap": 4.0}},
    "gate": {"passed": True},
    "model": "ridge",
}
# the experiment: RMSE and MAE rise (worse), R² falls (worse), MAPE falls (better), the gap narrows (better)
EXPERIMENT = BASE | {"rmse": 35.1, "rmse_ci": {"lo": 33.2, "hi": 37.0}, "mae": 22.5, "r2": 0.27, "mape": 0.2}
EXPERIMENT |= {"fairness": {"race": {"gap": 3.0}}, "model": "xgboost"}


def _flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            flat |= _flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """What `dvc metrics diff --all --json` prints for two versions of reports/metrics.json."""
    a, b = _flatten(old), _flatten(new)
    return {"reports/metrics.json": {k: {"old": a.get(k), "new": b.get(k)} for k in a.keys() | b.keys()}}


@pytest.mark.parametrize(
    ("key", "direction"),
    [
        ("rmse", -1),
        ("mae", -1),
        ("log_loss", -1),
        ("ece", -1),
        ("r2", 1),
        ("roc_auc_ovr", 1),
        ("rmse_ci.lo", -1),
        ("baselines.mean.rmse", -1),
        ("vs_baselines.ridge.rmse_diff", -1),
        ("fairness.race.gap", -1),
        ("segments.Contract.roc_auc_gap", -1),
        ("model_val_rmse", -1),  # reports/train/metrics.json
        ("model_val_r2", 1),
        ("model_val_log_loss", -1),
        ("n", None),
        ("model", None),
        ("best_cv_roc_auc", 1),  # reports/tune/metrics.json, binary
        ("families.logreg.cv_roc_auc_mean", 1),
        ("families.ridge.diff_to_best", -1),  # behind the best family: less is better
        ("best_cv_score", None),  # the objective's: the file says (below)
    ],
)
def test_each_metric_has_its_direction(key, direction):
    assert metric_direction(key) == direction


def test_tunes_objective_scores_take_the_direction_their_file_records():
    tune = {  # reports/tune/metrics.json of a regression, as `dvc metrics diff --all --json` prints it
        "direction": {"old": "minimize", "new": "minimize"},
        "best_cv_score": {"old": 33.45, "new": 33.92, "diff": 0.47},
        "families.ridge.cv_score_mean": {"old": 33.92, "new": 33.90, "diff": -0.02},
    }
    md = "\n".join(render_metrics({"reports/tune/metrics.json": tune}))
    assert "| `best_cv_score` | 33.45 | 33.92 | +0.47 | worse (↓) |" in md
    assert "| `families.ridge.cv_score_mean` | 33.92 | 33.9 | -0.02 | better (↓) |" in md
    maximized = {**tune, "direction": {"old": "maximize", "new": "maximize"}}
    assert "| `best_cv_score` | 33.45 | 33.92 | +0.47 | better (↑) |" in "\n".join(
        render_metrics({"reports/tune/metrics.json": maximized})
    )
    verdict = check_tolerances(parse_tolerances(["best_cv_score:0.1"]), {"reports/tune/metrics.json": tune})[0]
    assert (verdict.tolerance.tol, verdict.status) == (0.1, "broken")  # may rise by 0.1: it rose by 0.47


def test_the_metrics_table_says_which_change_is_better():
    md = "\n".join(render_metrics(_diff(BASE, EXPERIMENT)))
    assert "| `rmse` | 33.9 | 35.1 | +1.2 | worse (↓) |" in md
    assert "| `mae` | 23.1 | 22.5 | -0.6 | better (↓) |" in md
    assert "| `r2` | 0.31 | 0.27 | -0.04 | worse (↑) |" in md
    assert "| `mape` | 0.21 | 0.2 | -0.01 | better (↓) |" in md
    assert "| `model` | ridge | xgboost |  |  |" in md
    assert format_change("rmse", 1.0, 1.0) == "" and format_change("rmse", None, 1.0) == ""


def test_fail_on_takes_the_direction_of_an_unsigned_tolerance():
    diff = _diff(BASE, EXPERIMENT)
    verdicts = check_tolerances(parse_tolerances(["rmse:0.5,mae:0.5,r2:0.05,mape:0.001"]), diff)
    assert [(v.key, v.tolerance.tol, v.status) for v in verdicts] == [
        ("rmse", 0.5, "broken"),  # rose by 1.2, may rise by 0.5
        ("mae", 0.5, "ok"),  # fell: better
        ("r2", -0.05, "ok"),  # fell by 0.04, may drop by 0.05
        ("mape", 0.001, "ok"),
    ]
    assert check_tolerances(parse_tolerances(["rmse:+2"]), diff)[0].status == "ok"


@pytest.mark.parametrize(("spec", "fixed"), [("rmse:-0.5", "rmse:+0.5"), ("r2:+0.01", "r2:-0.01")])
def test_a_sign_against_the_metrics_direction_is_refused(spec, fixed):
    with pytest.raises(ReportError, match="sign of TOL is wrong") as info:
        check_tolerances(parse_tolerances([spec]), _diff(BASE, EXPERIMENT))
    assert fixed in str(info.value)


def test_an_unknown_direction_keeps_the_tolerance_as_written():
    experiment = EXPERIMENT | {"target_mean": 100.0}
    verdict = check_tolerances(parse_tolerances(["target_mean:0.5"]), _diff(BASE | {"target_mean": 110.0}, experiment))[
        0
    ]
    assert (verdict.tolerance.tol, verdict.status) == (0.5, "ok")  # as written: positive, lower is better
