"""Params sections: typed, validated, with the key named in every error."""

from __future__ import annotations

import pytest

from tabrepro.params import (
    ConfigError,
    FeaturesParams,
    ModelParams,
    SplitParams,
    load_params,
    read_section,
    read_seed,
)

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
