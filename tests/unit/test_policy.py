"""The data set's policy (params ``policy``, from ``conf/policy/<data set>.yaml``): typed, defaulted, validated with
the key named; Telco's own bars; the policy is its own section, so changing it re-runs evaluate and no earlier stage."""

from __future__ import annotations

import json

import pytest

from tabrepro.artefacts import EvaluationMetrics
from tabrepro.config.compose import compose_config
from tabrepro.config.params import EvaluateParams, read_section
from tabrepro.contract.policy import NEUTRAL_COST, CostMatrix, GatePolicy, Policy
from tabrepro.errors import ConfigError, parse_section
from tabrepro.evaluation.gate import judge_gate
from tests.conftest import REPO
from tests.support.metrics import scored_metrics

GOOD_COST = {"false_negative": 500, "false_positive": 50, "true_positive": 50, "true_negative": 0}

# What Telco's gate recorded in reports/metrics.json before the policy moved into the data set (from
# evaluate.gate), with the metrics it judged.
TELCO_METRICS = {
    "roc_auc": 0.856276,
    "roc_auc_ci": {"lo": 0.832402, "hi": 0.878483},
    "ece": 0.016168,
    "vs_logistic": {"roc_auc_diff": 0.00626, "roc_auc_diff_ci": {"lo": -0.000154, "hi": 0.012962}},
    "baselines": {"majority": {"roc_auc": 0.5}},
    "bootstrap": {"n": 1000, "seed": 42, "level": 0.95},
    "leakage": {"max_single_feature": "tenure", "max_single_feature_auc": 0.765676},
    "segments": {"Contract": {"roc_auc_gap": 0.08}},
}
TELCO_GATE_BEFORE = {
    "verdict": "pass",
    "reasons": [],
    "checks": {
        "min_roc_auc": {"verdict": "pass", "value": 0.856276, "limit": 0.8},
        "min_gain_over_baseline": {"verdict": "pass", "value": 0.00626, "limit": -0.005},
        "max_roc_auc": {"verdict": "pass", "value": 0.856276, "limit": 0.9},
        "max_single_feature_auc": {"verdict": "pass", "value": 0.765676, "limit": 0.9},
        "max_ece": {"verdict": "pass", "value": 0.016168, "limit": 0.1},
    },
}


def _policy(section: dict) -> Policy:
    return parse_section(Policy, section, where="params.yaml: policy")


@pytest.fixture(scope="module")
def telco_policy() -> Policy:
    return read_section(compose_config(REPO / "conf"), "policy", Policy)


def test_a_data_set_without_a_policy_gets_the_relative_defaults_and_a_neutral_cost():
    composed = compose_config(REPO / "conf", ["data=titanic"])  # no conf/policy/titanic.yaml
    assert composed["policy"] == {}
    policy = read_section(composed, "policy", Policy)
    assert policy == Policy() and policy.gate == GatePolicy() and policy.cost == NEUTRAL_COST
    assert (policy.cost.false_negative, policy.cost.false_positive) == (1, 1)
    assert (policy.cost.true_positive, policy.cost.true_negative) == (0, 0)


def test_a_partial_policy_keeps_the_other_defaults():
    policy = _policy({"gate": {"min_roc_auc": 0.7}})
    assert policy.gate.min_roc_auc == 0.7 and policy.gate.max_loss_to_logistic == 0.01 and policy.gate.beat_majority
    assert policy.cost == NEUTRAL_COST


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"gate": {"min_rocauc": 0.8}}, r"policy\.gate\.min_rocauc: unknown key"),
        ({"gate": {"max_loss_to_logistic": -0.1}}, r"policy\.gate\.max_loss_to_logistic: Input should be"),
        ({"gate": {"max_single_feature_auc": 0.3}}, r"policy\.gate\.max_single_feature_auc"),
        ({"cost": {**GOOD_COST, "false_positive": -1}}, r"policy\.cost\.false_positive: Input should be greater"),
        (
            {"cost": {k: v for k, v in GOOD_COST.items() if k != "true_negative"}},
            r"policy\.cost\.true_negative: Field required",
        ),
        ({"cost": {**GOOD_COST, "false_negative": "lots"}}, r"policy\.cost\.false_negative"),
        ({"cost": {**GOOD_COST, "false_negative": float("nan")}}, r"policy\.cost\.false_negative"),
        ({"cost": {**GOOD_COST, "false_negative": 10, "false_positive": 0}}, "errors must cost more"),
        ({"threshold": 0.5}, r"policy\.threshold: unknown key"),
    ],
)
def test_a_bad_policy_names_the_key(section, message):
    with pytest.raises(ConfigError, match=message):
        _policy(section)


def test_the_gate_and_cost_left_in_evaluate_are_refused_pointing_at_the_policy():
    section = {"evaluate": {"cost": GOOD_COST, "gate": {"min_roc_auc": 0.8}}}
    with pytest.raises(ConfigError, match=r"move evaluate\.gate -> policy\.gate, evaluate\.cost -> policy\.cost"):
        read_section(section, "evaluate", EvaluateParams)
    assert read_section({"evaluate": {}}, "evaluate", EvaluateParams).threshold_policy == "max_f1"


def test_the_cost_matrix_is_still_importable_from_params():
    from tabrepro.config import params

    assert params.CostMatrix is CostMatrix


def test_telco_keeps_its_bars_and_its_cost_matrix(telco_policy):
    gate, cost = telco_policy.gate, telco_policy.cost
    assert (gate.min_roc_auc, gate.min_gain_over_baseline, gate.max_roc_auc) == (0.8, -0.005, 0.9)
    assert (gate.max_single_feature_auc, gate.max_ece, gate.max_segment_roc_auc_gap) == (0.9, 0.1, None)
    assert cost == CostMatrix(**GOOD_COST)


def test_telco_policy_gives_exactly_the_verdict_and_checks_it_gave_before(telco_policy):
    verdict = judge_gate(scored_metrics(TELCO_METRICS), telco_policy.gate)
    assert verdict.model_dump(mode="json") == TELCO_GATE_BEFORE


def test_telco_policy_reproduces_the_committed_verdict(telco_policy):
    """The committed reports/metrics.json was judged by Telco's bars: its policy judges it the same, check by check."""
    committed = json.loads((REPO / "reports" / "metrics.json").read_text(encoding="utf-8"))
    judged = judge_gate(EvaluationMetrics.model_validate(committed), telco_policy.gate)
    assert judged.model_dump(mode="json") == committed["gate"]


def test_a_failing_telco_model_is_refused_for_the_same_reason_as_before(telco_policy):
    weak = {**TELCO_METRICS, "roc_auc": 0.79}
    verdict = judge_gate(scored_metrics(weak), telco_policy.gate)
    assert verdict.reasons == ("min_roc_auc: test ROC-AUC is 0.7900, must be >= 0.8",)


def test_the_model_card_shows_the_policy_the_gate_was_judged_by(telco_contract, telco_policy):
    from tabrepro.evaluation.model_card import _gate

    verdict = judge_gate(scored_metrics(TELCO_METRICS), telco_policy.gate)
    card = _gate(verdict, telco_contract, telco_policy)
    assert "**PASSED**" in card and "- `min_roc_auc`: 0.8563 (limit 0.8) ok" in card
    assert "Policy of the data set `telco_churn` (params `policy`, from `conf/policy/`" in card
    assert "`min_roc_auc: 0.8`, `min_gain_over_baseline: -0.005`, `max_roc_auc: 0.9`" in card
    assert "switched off: `max_loss_to_logistic`, `beat_majority`, `max_segment_roc_auc_gap`" in card
    assert "false negative 500, false positive 50, true positive 50, true negative 0" in card
    default = _gate(judge_gate(scored_metrics(TELCO_METRICS), Policy().gate), telco_contract, Policy())
    assert "`max_loss_to_logistic: 0.01`, `beat_majority: True`, `max_single_feature_auc: 0.95`" in default
    assert "false negative 1, false positive 1, true positive 0, true negative 0" in default


def test_the_policy_is_its_own_params_section_that_only_evaluate_reads():
    import yaml

    stages = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    readers = sorted(name for name, stage in stages.items() if "policy" in stage.get("params", []))
    assert readers == ["evaluate"]
    assert "policy" not in compose_config(REPO / "conf")["data"]
