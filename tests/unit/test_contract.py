"""The data contract: loading, refusing bad declarations, and what is derived from it."""

from __future__ import annotations

import copy

import pytest

from tabrepro.contract.spec import load_contract
from tabrepro.contract.table import build_schema
from tabrepro.errors import ConfigError
from tests.conftest import TINY_CONTRACT

TINY = {
    "name": "tiny",
    "source": "raw.csv",
    "id_column": "id",
    "target": {"column": "y", "positive": "yes", "negative": "no"},
    "features": {"age": {"type": "numeric"}, "plan": {"type": "categorical", "values": ["basic", "pro"]}},
}


def _with(**changes: object) -> dict:
    contract = copy.deepcopy(TINY)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = contract
        for key in parents:
            node = node[key]
        node[leaf] = value
    return contract


def test_column_lists_follow_declared_types(tiny_contract):
    assert tiny_contract.numeric_features == ["age", "spend"]
    assert tiny_contract.categorical_features == ["plan"]
    assert tiny_contract.boolean_features == ["active"]
    assert tiny_contract.columns == ["id", "age", "spend", "plan", "active", "y"]


def test_telco_contract_declares_every_raw_column(telco_contract, repo):
    header = (repo / telco_contract.source).read_text().splitlines()[0].split(",")
    assert sorted(header) == sorted(telco_contract.columns)
    assert telco_contract.features["TotalCharges"].nullable


def test_unknown_feature_type_names_column_and_type():
    with pytest.raises(ConfigError, match=r"features\.age\.type") as err:
        load_contract(_with(features__age={"type": "integer"}))
    assert "integer" in str(err.value)


def test_typo_key_is_refused_and_named():
    with pytest.raises(ConfigError, match=r"features\.age\.nulable: unknown key"):
        load_contract(_with(features__age={"type": "numeric", "nulable": True}))


def test_typo_top_level_key_is_refused():
    contract = _with()
    contract["id_colum"] = contract.pop("id_column")
    with pytest.raises(ConfigError, match="id_colum"):
        load_contract(contract)


def test_yaml_boolean_token_must_be_quoted():
    with pytest.raises(ConfigError, match="quote raw tokens"):
        load_contract(_with(features__plan={"type": "boolean", "true_values": [True]}))


def test_numeric_tokens_are_read_as_text():
    contract = load_contract(_with(features__plan={"type": "boolean", "true_values": [1], "false_values": [0]}))
    assert contract.features["plan"].true_values == ("1",)


@pytest.mark.parametrize(
    ("feature", "message"),
    [
        ({"type": "categorical"}, "non-empty 'values'"),
        ({"type": "numeric", "min": 5, "max": 1}, "empty range"),
        ({"type": "categorical", "values": ["a"], "min": 0}, "apply to numeric"),
        ({"type": "boolean", "true_values": ["Y"], "false_values": ["Y"]}, "overlap"),
    ],
)
def test_inconsistent_feature_declarations(feature, message):
    with pytest.raises(ConfigError, match=message):
        load_contract(_with(features__plan=feature))


def test_target_labels_must_differ():
    with pytest.raises(ConfigError, match="same"):
        load_contract(_with(target__negative="yes"))


def test_schema_has_a_column_per_contract_column(tiny_contract):
    schema = build_schema(tiny_contract)
    assert set(schema.columns) == set(tiny_contract.columns)
    assert schema.columns["id"].unique
    assert schema.columns["spend"].nullable and not schema.columns["age"].nullable


def test_segments_must_be_features():
    with pytest.raises(ConfigError, match=r"params.yaml: data: .*segments: unknown column\(s\) \['plan_type'\]"):
        load_contract({**TINY_CONTRACT, "segments": ["plan", "plan_type"]})
    assert load_contract({**TINY_CONTRACT, "segments": ["plan"]}).segments == ("plan",)
