"""Params sections: typed, validated, with the key named in every error."""

from __future__ import annotations

import pytest

from tabrepro.config.params import (
    EvaluateParams,
    FeaturesParams,
    ModelParams,
    PackageParams,
    SplitParams,
    load_params,
    read_section,
    read_seed,
)
from tabrepro.errors import ConfigError

GOOD_SPLIT = {"train": 0.7, "val": 0.15, "test": 0.15, "seed": 1}


def test_valid_split():
    assert read_section({"split": GOOD_SPLIT}, "split", SplitParams).train == 0.7


def test_split_ratio_above_one_names_the_key():
    with pytest.raises(ConfigError, match=r"params.yaml: split\.train: Input should be less than 1"):
        read_section({"split": {**GOOD_SPLIT, "train": 1.5}}, "split", SplitParams)


def test_split_ratios_must_sum_to_one():
    with pytest.raises(ConfigError, match="must be 1, got 1.05"):
        read_section({"split": {**GOOD_SPLIT, "train": 0.75}}, "split", SplitParams)


def test_typo_key_in_section():
    with pytest.raises(ConfigError, match=r"split\.sead: unknown key"):
        read_section({"split": {**GOOD_SPLIT, "sead": 3}}, "split", SplitParams)


def test_missing_section():
    with pytest.raises(ConfigError, match="params.yaml: features: section is missing"):
        read_section({}, "features", FeaturesParams)


def test_unknown_model_family():
    with pytest.raises(ConfigError, match=r"model\.name"):
        read_section({"model": {"name": "svm"}}, "model", ModelParams)


def test_early_stopping_only_for_xgboost():
    with pytest.raises(ConfigError, match="applies to xgboost"):
        read_section({"model": {"name": "logreg", "early_stopping_rounds": 5}}, "model", ModelParams)


@pytest.mark.parametrize("seed", [-1, "42", 1.5, True, None])
def test_bad_seed(seed):
    with pytest.raises(ConfigError, match="seed"):
        read_seed({"seed": seed})


def test_missing_params_file(tmp_path):
    with pytest.raises(ConfigError, match="params file not found"):
        load_params(tmp_path / "params.yaml")


def _evaluate(**change) -> EvaluateParams:
    return read_section({"evaluate": change}, "evaluate", EvaluateParams)


def test_evaluate_defaults():
    p = _evaluate()
    assert p.threshold_policy == "max_f1" and p.bootstrap.n == 1000 and p.segment_min_rows == 30
    assert "gate" not in EvaluateParams.model_fields and "cost" not in EvaluateParams.model_fields  # the policy section


def test_zero_bootstrap_resamples():
    with pytest.raises(ConfigError, match=r"evaluate\.bootstrap\.n: Input should be greater than or equal to 1"):
        _evaluate(bootstrap={"n": 0})


def test_unknown_threshold_policy_and_key():
    with pytest.raises(ConfigError, match=r"evaluate\.threshold_policy"):
        _evaluate(threshold_policy="youden")
    with pytest.raises(ConfigError, match=r"evaluate\.calibration_binz: unknown key"):
        _evaluate(calibration_binz=10)


def test_a_gate_left_in_evaluate_points_at_the_policy():
    # the gate's and the cost matrix's own checks (key named, bad values) are in test_policy.py
    with pytest.raises(ConfigError, match=r"evaluate: .*move evaluate\.gate -> policy\.gate"):
        _evaluate(gate={"min_rocauc": 0.8})


def test_gate_override_needs_a_real_reason():
    with pytest.raises(ConfigError, match=r"package\.override_gate: String should have at least 10 characters"):
        read_section({"package": {"override_gate": "yes"}}, "package", PackageParams)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("seed: 42\npaths: [a\n  b: c\n", r"params\.yaml: not valid YAML: line 3, column 4: expected ','"),
        ("seed: 42\n\tsplit: 1\n", r"params\.yaml: not valid YAML: line 2, column 1"),
        ("- a\n- b\n", r"params\.yaml: expected a mapping of sections at the top level, got list"),
        ("", r"params\.yaml: expected a mapping of sections at the top level, got NoneType"),
    ],
)
def test_a_params_file_that_is_not_a_yaml_mapping_names_the_file_and_line(tmp_path, content, message):
    (tmp_path / "params.yaml").write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_params(tmp_path / "params.yaml")


def test_a_params_path_that_is_a_folder_or_not_text(tmp_path):
    with pytest.raises(ConfigError, match="is a folder, not a params file"):
        load_params(tmp_path)
    (tmp_path / "params.yaml").write_bytes(b"seed: \xff\xfe\n")
    with pytest.raises(ConfigError, match=r"params\.yaml: cannot read the params file: 'utf-8' codec"):
        load_params(tmp_path / "params.yaml")
