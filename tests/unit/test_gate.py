"""The promotion gate: judged from metrics and params, enforced (or overridden) at packaging."""

from __future__ import annotations

import pytest

from tabrepro.artefacts import GateCheck, GateVerdict, PackagedGate, ScoredMetrics, validate_artefact
from tabrepro.contract.policy import GATE_KEYS, GatePolicy
from tabrepro.evaluation.gate import GateError, enforce_gate, judge_gate
from tests.conftest import GATE_OFF
from tests.support.metrics import scored_metrics

METRICS = {
    "roc_auc": 0.85,
    "roc_auc_ci": {"lo": 0.82, "hi": 0.88},
    "ece": 0.02,
    "vs_logistic": {"roc_auc_diff": 0.004, "roc_auc_diff_ci": {"lo": -0.006, "hi": 0.014}},
    "baselines": {"majority": {"roc_auc": 0.5}, "logistic": {"roc_auc": 0.846}},
    "bootstrap": {"n": 1000, "seed": 42, "level": 0.95},
    "leakage": {"max_single_feature": "tenure", "max_single_feature_auc": 0.76},
    "segments": {"Contract": {"roc_auc_gap": 0.11}, "gender": {"roc_auc_gap": 0.01}},
}
ALL_ON = GatePolicy(
    min_roc_auc=0.8,
    min_gain_over_baseline=0.0,
    max_loss_to_logistic=0.01,
    beat_majority=True,
    max_roc_auc=0.9,
    max_single_feature_auc=0.9,
    max_ece=0.05,
    max_segment_roc_auc_gap=0.2,
)


def only(**limits) -> GatePolicy:
    """A gate that checks ``limits`` and nothing else."""
    return GatePolicy(**{**GATE_OFF, **limits})


def test_a_good_model_passes_every_check():
    gate = judge_gate(scored_metrics(METRICS), ALL_ON)
    assert gate.passed is True and gate.reasons == ()
    assert set(gate.checks) == GATE_KEYS["binary"] - {"max_fairness_gap"}  # every binary criterion switched on
    assert gate.checks["max_segment_roc_auc_gap"].value == 0.11


@pytest.mark.parametrize(
    ("change", "criterion", "text"),
    [
        ({"min_roc_auc": 0.9}, "min_roc_auc", "test ROC-AUC is 0.8500, must be >= 0.9"),
        ({"min_gain_over_baseline": 0.01}, "min_gain_over_baseline", "logistic baseline"),
        ({"max_roc_auc": 0.84}, "max_roc_auc", "leakage alarm"),
        ({"max_single_feature_auc": 0.7}, "max_single_feature_auc", "feature 'tenure' alone"),
        ({"max_ece": 0.01}, "max_ece", "calibration"),
        ({"max_segment_roc_auc_gap": 0.1}, "max_segment_roc_auc_gap", "between segments is 0.1100"),
    ],
)
def test_each_failed_criterion_is_named(change, criterion, text):
    gate = judge_gate(scored_metrics(METRICS), ALL_ON.model_copy(update=change))
    assert gate.passed is False
    assert len(gate.reasons) == 1
    assert gate.reasons[0].startswith(f"{criterion}: ") and text in gate.reasons[0]
    assert gate.checks[criterion].passed is False


def test_the_gate_judges_complete_metrics_only_with_no_default_for_a_missing_number():
    """No ``.get(..., 0.5)``: metrics without the majority baseline or the bootstrap settings are refused where they
    are read, naming the key, instead of being judged against a made-up value."""
    data = scored_metrics(METRICS).model_dump(mode="json")
    del data["baselines"]["majority"], data["bootstrap"]
    with pytest.raises(ValueError, match=r"baselines\.majority: missing") as error:
        validate_artefact(data, ScoredMetrics, source="reports/metrics.json")
    assert "bootstrap: missing" in str(error.value) and "reports/metrics.json" in str(error.value)


def test_switched_off_criteria_are_not_checked():
    gate = judge_gate(scored_metrics(METRICS), only(min_roc_auc=0.99))
    assert list(gate.checks) == ["min_roc_auc"] and gate.passed is False


def test_enforce_refuses_a_failed_gate_naming_the_criterion():
    failed = judge_gate(scored_metrics(METRICS), only(min_roc_auc=0.99))
    with pytest.raises(GateError, match=r"failed the promotion gate.*\n  min_roc_auc: test ROC-AUC is 0.8500"):
        enforce_gate(failed, override=None, source="reports/metrics.json")


def test_override_packages_a_failed_gate_and_records_why(caplog):
    failed = judge_gate(scored_metrics(METRICS), only(min_roc_auc=0.99))
    record = enforce_gate(failed, override="hotfix approved by alice", source="m.json")
    assert record.overridden is True and record.override_reason == "hotfix approved by alice"
    assert record.passed is False and record.reasons == failed.reasons and record.checks == failed.checks
    assert "PROMOTION GATE OVERRIDDEN" in caplog.text and "min_roc_auc" in caplog.text


def test_a_passed_gate_is_recorded_as_judged_and_not_overridden():
    verdict = judge_gate(scored_metrics(METRICS), ALL_ON)
    record = enforce_gate(verdict, override="an override nobody needed", source="m.json")
    assert record == PackagedGate(**verdict.model_dump()) and record.overridden is False
    assert record.override_reason is None


@pytest.mark.parametrize(
    ("gate", "problem"),
    [
        ({"passed": True, "reasons": ["min_roc_auc: low"]}, "records failed checks"),
        ({"passed": True, "checks": {"max_ece": {"passed": False, "value": 0.2, "limit": 0.1}}}, "max_ece"),
        ({"passed": False, "overridden": True}, "override_reason"),
        ({"passed": True, "overridden": True, "override_reason": "why not, says bob"}, "never overridden"),
    ],
)
def test_an_inconsistent_verdict_is_refused(gate, problem):
    with pytest.raises(ValueError, match=problem):
        PackagedGate.model_validate(gate)


def test_the_verdict_evaluate_records_has_no_override_fields():
    verdict = judge_gate(scored_metrics(METRICS), only(min_roc_auc=0.99))
    assert set(verdict.model_dump()) == {"verdict", "reasons", "checks"}
    assert isinstance(verdict, GateVerdict) and not isinstance(verdict, PackagedGate)


# --- the relative default policy --------------------------------------------------------------------------------


def _scored(
    roc_auc: float, ci: tuple[float, float], diff: float, diff_ci: tuple[float, float], **extra
) -> ScoredMetrics:
    """Metrics of a model with test ROC-AUC ``roc_auc`` (CI ``ci``) and a paired difference to the logistic
    baseline of ``diff`` (CI ``diff_ci``)."""
    return scored_metrics(
        {
            **METRICS,
            "roc_auc": roc_auc,
            "roc_auc_ci": {"lo": ci[0], "hi": ci[1]},
            "vs_logistic": {"roc_auc_diff": diff, "roc_auc_diff_ci": {"lo": diff_ci[0], "hi": diff_ci[1]}},
            **extra,
        }
    )


def test_the_default_policy_is_relative_and_its_absolute_bars_are_opt_in():
    gate = GatePolicy()
    assert (gate.max_loss_to_logistic, gate.beat_majority, gate.max_single_feature_auc) == (0.01, True, 0.95)
    assert gate.min_roc_auc is gate.max_roc_auc is gate.min_gain_over_baseline is gate.max_ece is None
    verdict = judge_gate(scored_metrics(METRICS), gate)
    assert list(verdict.checks) == ["max_loss_to_logistic", "beat_majority", "max_single_feature_auc"]


def test_a_model_losing_to_the_baseline_beyond_the_tolerance_fails_naming_it():
    losing = _scored(0.74, (0.70, 0.78), -0.05, (-0.08, -0.02))
    verdict = judge_gate(losing, GatePolicy())
    assert verdict.passed is False and list(verdict.reasons) == [verdict.reasons[0]]
    assert verdict.reasons[0].startswith("max_loss_to_logistic: ")
    assert "loss to the logistic baseline" in verdict.reasons[0] and "95 % CI" in verdict.reasons[0]
    assert "is 0.0200, must be <= 0.01" in verdict.reasons[0]
    assert verdict.checks["max_loss_to_logistic"].model_dump(mode="json") == {
        "verdict": "fail",
        "value": 0.02,
        "limit": 0.01,
    }


def test_a_model_at_the_baseline_passes_and_a_loss_within_the_tolerance_passes():
    tie = _scored(0.76, (0.72, 0.80), 0.0, (-0.012, 0.011))
    assert judge_gate(tie, GatePolicy()).passed is True
    # the whole CI below zero, but not below -0.01: a loss the policy tolerates
    small_loss = _scored(0.76, (0.72, 0.80), -0.006, (-0.011, -0.004))
    verdict = judge_gate(small_loss, GatePolicy())
    assert verdict.passed is True and verdict.checks["max_loss_to_logistic"].value == 0.004


def test_tables_whose_best_roc_auc_is_modest_or_high_pass_the_default_policy():
    """Two tables that Telco's absolute bars refused, for being honest: best ROC-AUC 0.76, and 0.945 with no
    feature above 0.65 alone."""
    modest = _scored(0.76, (0.72, 0.80), 0.004, (-0.01, 0.018))
    high = _scored(
        0.945,
        (0.93, 0.96),
        0.03,
        (0.02, 0.04),
        leakage={"max_single_feature": "calls", "max_single_feature_auc": 0.65},
    )
    for metrics in (modest, high):
        verdict = judge_gate(metrics, GatePolicy())
        assert verdict.passed is True and verdict.reasons == ()
        assert all(check.passed for check in verdict.checks.values())
    assert "max_roc_auc" not in judge_gate(high, GatePolicy()).checks


def test_a_single_feature_that_gives_the_target_away_fails_the_leakage_alarm():
    leaky = _scored(
        0.995,
        (0.99, 1.0),
        0.1,
        (0.08, 0.12),
        leakage={"max_single_feature": "cancel_date", "max_single_feature_auc": 0.99},
    )
    verdict = judge_gate(leaky, GatePolicy())
    assert verdict.passed is False
    assert verdict.reasons == (
        "max_single_feature_auc: ROC-AUC of feature 'cancel_date' alone (leakage alarm) is 0.9900, must be <= 0.95",
    )


def test_a_model_no_better_than_the_majority_class_fails():
    chance = _scored(0.53, (0.47, 0.59), 0.0, (-0.02, 0.02))
    verdict = judge_gate(chance, GatePolicy())
    assert verdict.passed is False and len(verdict.reasons) == 1
    assert verdict.reasons[0].startswith("beat_majority: the lower end of the test ROC-AUC's 95 % CI")
    assert "is 0.4700, must be > 0.5" in verdict.reasons[0]
    assert verdict.checks["beat_majority"].model_dump(mode="json") == {"verdict": "fail", "value": 0.47, "limit": 0.5}
    assert "beat_majority" not in judge_gate(chance, GatePolicy(beat_majority=False)).checks


def test_verdicts_and_flags_are_written_as_words_and_read_in_either_form():
    """`dvc metrics diff` shows a JSON boolean's change as -1 or 1, a word as itself; files written before the words
    (a report's base revision) still read."""
    check = GateCheck(passed=False, value=0.2, limit=0.1)
    record = PackagedGate(
        passed=False, reasons=("low",), checks={"max_ece": check}, overridden=True, override_reason="ok by J"
    )
    written = record.model_dump(mode="json")
    assert (written["verdict"], written["checks"]["max_ece"]["verdict"], written["overridden"]) == (
        "fail",
        "fail",
        "yes",
    )
    assert "passed" not in written and record.passed is False  # the attribute stays a bool
    before = {
        "passed": False, "reasons": ["low"], "checks": {"max_ece": {"passed": False, "value": 0.2, "limit": 0.1}},
        "overridden": True, "override_reason": "ok by J",
    }  # fmt: skip
    assert PackagedGate.model_validate(written) == PackagedGate.model_validate(before) == record
    with pytest.raises(ValueError, match="overridden\n.*expected 'yes' or 'no'"):
        PackagedGate.model_validate({**written, "overridden": "true"})
    with pytest.raises(ValueError, match="verdict\n.*expected 'pass' or 'fail'"):
        GateVerdict.model_validate({"verdict": "passed"})


def test_a_leakage_alarm_refusal_says_how_to_leave_the_feature_out():
    leaky = judge_gate(scored_metrics(METRICS), only(max_single_feature_auc=0.5))
    with pytest.raises(GateError, match=r"target in disguise.*deleting its line from the data set's contract"):
        enforce_gate(leaky, override=None, source="m.json")
    with pytest.raises(GateError) as low:
        enforce_gate(judge_gate(scored_metrics(METRICS), only(min_roc_auc=0.99)), override=None, source="m.json")
    assert "contract" not in str(low.value)  # only a leak is pointed at the contract
