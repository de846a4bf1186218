"""The promotion gate: judged from metrics and params, enforced (or overridden) at packaging."""

from __future__ import annotations

import pytest

from tabrepro.artefacts import GateVerdict, PackagedGate
from tabrepro.config.params import GateParams
from tabrepro.evaluation.gate import GateError, enforce_gate, judge_gate

METRICS = {
    "roc_auc": 0.85,
    "ece": 0.02,
    "vs_logistic": {"roc_auc_diff": 0.004},
    "leakage": {"max_single_feature": "tenure", "max_single_feature_auc": 0.76},
    "segments": {"Contract": {"roc_auc_gap": 0.11}, "gender": {"roc_auc_gap": 0.01}},
}
ALL_ON = GateParams(
    min_roc_auc=0.8,
    min_gain_over_baseline=0.0,
    max_roc_auc=0.9,
    max_single_feature_auc=0.9,
    max_ece=0.05,
    max_segment_roc_auc_gap=0.2,
)


def test_a_good_model_passes_every_check():
    gate = judge_gate(METRICS, ALL_ON)
    assert gate.passed is True and gate.reasons == ()
    assert set(gate.checks) == set(ALL_ON.model_fields)
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
    gate = judge_gate(METRICS, ALL_ON.model_copy(update=change))
    assert gate.passed is False
    assert len(gate.reasons) == 1
    assert gate.reasons[0].startswith(f"{criterion}: ") and text in gate.reasons[0]
    assert gate.checks[criterion].passed is False


def test_switched_off_criteria_are_not_checked():
    gate = judge_gate(METRICS, GateParams(min_roc_auc=0.99))
    assert list(gate.checks) == ["min_roc_auc"] and gate.passed is False


def test_enforce_refuses_a_failed_gate_naming_the_criterion():
    failed = judge_gate(METRICS, GateParams(min_roc_auc=0.99))
    with pytest.raises(GateError, match=r"failed the promotion gate.*\n  min_roc_auc: test ROC-AUC is 0.8500"):
        enforce_gate(failed, override=None, source="reports/metrics.json")


def test_override_packages_a_failed_gate_and_records_why(caplog):
    failed = judge_gate(METRICS, GateParams(min_roc_auc=0.99))
    record = enforce_gate(failed, override="hotfix approved by alice", source="m.json")
    assert record.overridden is True and record.override_reason == "hotfix approved by alice"
    assert record.passed is False and record.reasons == failed.reasons and record.checks == failed.checks
    assert "PROMOTION GATE OVERRIDDEN" in caplog.text and "min_roc_auc" in caplog.text


def test_a_passed_gate_is_recorded_as_judged_and_not_overridden():
    verdict = judge_gate(METRICS, ALL_ON)
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
    verdict = judge_gate(METRICS, GateParams(min_roc_auc=0.99))
    assert set(verdict.model_dump()) == {"passed", "reasons", "checks"}
    assert isinstance(verdict, GateVerdict) and not isinstance(verdict, PackagedGate)
