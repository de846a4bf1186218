"""The request model derived from the contract, record validation and ONNX feeds: no pandas involved."""

from __future__ import annotations

import numpy as np
import pytest

from tabrepro.contract.records import build_record_model
from tabrepro.serving.runtime import feeds_from_records, validate_records

GOOD = {"id": "a1", "age": 30, "spend": "10.5", "plan": "basic", "active": "Yes"}


def test_valid_record_is_parsed_like_prepare_parses_it(tiny_contract):
    record, errors = build_record_model(tiny_contract).parse(GOOD)
    assert errors == []
    assert record == {"id": "a1", "age": 30.0, "spend": 10.5, "plan": "basic", "active": 1.0}


def test_missing_token_in_a_nullable_field_is_none(tiny_contract):
    record, _ = build_record_model(tiny_contract).parse({**GOOD, "spend": " "})
    assert record is not None and record["spend"] is None


@pytest.mark.parametrize(
    ("change", "field", "reason", "text"),
    [
        ({"age": 130}, "age", "out_of_range", "expected an integer between 0 and 120, got '130'"),
        ({"age": 30.5}, "age", "out_of_range", "expected an integer between 0 and 120, got '30.5'"),
        ({"age": "thirty"}, "age", "invalid_value", "expected a number, got 'thirty'"),
        ({"age": None}, "age", "invalid_value", "missing value in a column that may not be missing, got null"),
        ({"plan": "gold"}, "plan", "unknown_category", "expected one of ['basic', 'pro'], got 'gold'"),
        ({"active": True}, "active", "invalid_value", "expected one of ['Yes', 'No'], got 'true'"),
        ({"active": ["Yes"]}, "active", "invalid_value", "expected one of ['Yes', 'No'], got '[\"Yes\"]'"),
        ({"plan": {"a": 1}}, "plan", "unknown_category", "expected one of ['basic', 'pro'], got '{\"a\": 1}'"),
        ({"age": True}, "age", "invalid_value", "expected a number, got 'true'"),
        ({"id": 1.5}, "id", "invalid_value", "expected text or a whole number as the id, got '1.5'"),
        ({"id": False}, "id", "invalid_value", "expected text or a whole number as the id, got 'false'"),
        ({"colour": "red"}, "colour", "unknown_field", "unknown field"),
    ],
)
def test_each_bad_value_names_record_field_and_problem(tiny_contract, change, field, reason, text):
    model = build_record_model(tiny_contract)
    parsed, errors = validate_records([GOOD, {**GOOD, "id": "a2", **change}], model)
    assert len(parsed) == 1
    assert [(e.index, e.field, e.reason) for e in errors] == [(1, field, reason)]
    assert str(errors[0]) == f"records[1].{field}: {text}"
    assert str(errors[0]).startswith(f"records[1].{field}: ")


def test_missing_field_and_non_object(tiny_contract):
    model = build_record_model(tiny_contract)
    record = dict(GOOD)
    del record["plan"]
    _, errors = validate_records([record, "not a record"], model)
    assert [(e.index, e.field, e.reason) for e in errors] == [(0, "plan", "missing_field"), (1, "*", "not_an_object")]


def test_feeds_have_one_column_per_feature(tiny_contract):
    model = build_record_model(tiny_contract)
    parsed, _ = validate_records([GOOD, {**GOOD, "id": "a2", "spend": None, "active": "No"}], model)
    feeds = feeds_from_records(parsed, tiny_contract)
    assert set(feeds) == set(tiny_contract.features)
    assert feeds["age"].dtype == np.float32
    assert feeds["age"].shape == (2, 1)
    assert np.isnan(feeds["spend"][1, 0])
    assert feeds["active"][:, 0].tolist() == [1.0, 0.0]
    assert feeds["plan"].dtype == object


def test_ids_are_optional_text_or_whole_numbers_and_unique_in_a_request(tiny_contract):
    model = build_record_model(tiny_contract)
    without = {k: v for k, v in GOOD.items() if k != "id"}
    parsed, errors = validate_records([{**GOOD, "id": 7}, {**GOOD, "id": " b "}, without, {**GOOD, "id": None}], model)
    assert errors == []
    assert [r["id"] for r in parsed] == ["7", "b", None, None]  # no id, or a null one: nothing to repeat
    _, errors = validate_records([GOOD, {**GOOD, "id": "b"}, {**GOOD, "id": " a1"}], model)
    assert [(e.index, e.field, e.reason) for e in errors] == [(2, "id", "duplicate_id")]
    assert str(errors[0]) == (
        "records[2].id: duplicate values in a column that must be unique, got ' a1' (first at records[0])"
    )


def test_no_json_value_raises(tiny_contract):
    """Arrays, objects, booleans, huge and non-finite numbers in every field: errors, never an exception."""
    model = build_record_model(tiny_contract)
    values = [[1, [2]], {"a": {"b": None}}, True, False, 1e400, -1e400, float("nan"), 10**400, "", " ", None]
    for name in ("id", *tiny_contract.features):
        for value in values:
            parsed, errors = validate_records([{**GOOD, name: value}], model)
            assert len(parsed) + len({e.index for e in errors}) == 1, (name, value)
            assert all(e.field == name for e in errors), (name, value, errors)


def test_the_request_path_imports_no_pandas_arrow_or_pandera():
    """The service validates with the plain-Python record adapter; the heavy parsers stay in the table/rows ones."""
    import subprocess
    import sys

    code = (
        "import sys, tabrepro.contract, tabrepro.contract.records, tabrepro.serving.runtime; "
        "print(sorted(m for m in ('pandas', 'pyarrow', 'pandera') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"


def test_text_longer_than_the_limit_is_refused_without_being_echoed(tiny_contract):
    model = build_record_model(tiny_contract, max_text_chars=10)
    _, errors = validate_records([{**GOOD, "id": "i" * 11}, {**GOOD, "id": "b", "plan": "p" * 5000}], model)
    assert [(e.index, e.field, e.reason) for e in errors] == [(0, "id", "too_long"), (1, "plan", "too_long")]
    assert str(errors[1]) == f"records[1].plan: text longer than 10 characters, got '{'p' * 40}...' (5,000 characters)"
    parsed, errors = validate_records([{**GOOD, "id": "i" * 10}], model)  # at the limit: accepted
    assert errors == [] and parsed[0]["id"] == "i" * 10
    _, errors = validate_records([{**GOOD, "k" * 1000: 1}], model)
    assert errors[0].reason == "unknown_field" and len(str(errors[0])) < 120  # a huge key is cut too


def test_the_record_json_schema_is_the_contract(tiny_contract):
    from tabrepro.contract.records import record_json_schema

    schema = record_json_schema(tiny_contract, max_text_chars=64)
    assert schema["required"] == ["age", "spend", "plan", "active"] and schema["additionalProperties"] is False
    props = schema["properties"]
    assert props["age"] == {"type": "integer", "minimum": 0, "maximum": 120}
    assert props["spend"] == {"anyOf": [{"type": "number", "minimum": 0}, {"type": "null"}]}
    assert props["plan"] == {"type": "string", "enum": ["basic", "pro"]}
    assert props["active"] == {"type": "string", "enum": ["Yes", "No"]}
    assert props["id"]["anyOf"][0]["maxLength"] == 64
    # a record made of each field's first allowed value is accepted by the record model
    first = {"age": 0, "spend": 0, "plan": "basic", "active": "Yes", "id": "x"}
    assert build_record_model(tiny_contract).parse(first)[1] == []


def test_public_reasons_name_files_not_absolute_paths():
    from tabrepro.serving.service import public_reason

    text = (
        "rollout candidate /srv/models/cand: /srv/models/cand/model.onnx: sha256 ab does not match cd packaged in "
        "/srv/models/cand/manifest.json; cannot read it: [Errno 21] Is a directory: '/srv/m/manifest.json'"
    )
    assert public_reason(text) == (
        "rollout candidate cand: model.onnx: sha256 ab does not match cd packaged in manifest.json; cannot read it: "
        "[Errno 21] Is a directory: 'manifest.json'"
    )
    assert public_reason("serve.rollout.mode is 'shadow' but there is no candidate") == (
        "serve.rollout.mode is 'shadow' but there is no candidate"
    )


def test_workers_come_from_the_environment_then_the_manifest(tmp_path):
    import json

    import numpy as np

    from tabrepro.artefacts import ServeParams, ServingManifest
    from tabrepro.monitoring.drift import compute_score_reference
    from tabrepro.serving.declaration import configured_workers, declare

    manifest = ServingManifest.sealed(
        version="tiny-logreg-0",
        onnx_sha256="0" * 64,
        model_sha256="1" * 64,
        threshold=0.5,
        test_roc_auc=0.8,
        serve=ServeParams(workers=3),
        contract={"name": "tiny"},
        score_reference=compute_score_reference(np.linspace(0, 1, 50)),
        graphs={},
    )
    (tmp_path / "manifest.json").write_text(json.dumps(manifest.model_dump(mode="json")))
    env = {"TABREPRO_SERVING_DIR": str(tmp_path)}
    declared = declare(env)  # read once, when the class is declared, and checked like any manifest
    assert declared.manifest == manifest and declared.manifest_of(tmp_path) == manifest
    assert declared.manifest_of(tmp_path / "elsewhere") is None  # another folder is read by the worker itself
    assert configured_workers(env, declared.manifest) == 3
    assert configured_workers(env | {"TABREPRO_WORKERS": "2"}, declared.manifest) == 2
    missing = {"TABREPRO_SERVING_DIR": str(tmp_path / "missing")}
    assert declare(missing).manifest is None and configured_workers(missing, declare(missing).manifest) == 1
    (tmp_path / "manifest.json").write_text(json.dumps({"serve": {"workers": 3}}))  # not a manifest: refused
    assert declare(env).manifest is None and configured_workers(env, None) == 1
    assert configured_workers({"TABREPRO_WORKERS": "many"}, manifest) == 1


def test_serve_settings_are_packaged_whole_defaults_included_and_round_trip():
    from tabrepro.artefacts import FallbackParams, LimitsParams, ServeParams
    from tabrepro.serving.rollout import resolve_serve_settings

    defaults = ServeParams().model_dump(mode="json")  # manifest schema 2: every setting written, none left out
    assert defaults["workers"] == 1 and defaults["limits"] == LimitsParams().model_dump(mode="json")
    assert defaults["fallback"] == FallbackParams().model_dump(mode="json")
    custom = ServeParams(workers=2, limits=LimitsParams(max_records=5)).model_dump(mode="json")
    assert custom["workers"] == 2 and custom["limits"]["max_records"] == 5
    packaged = ServeParams.model_validate(custom)  # a round trip keeps what was set, and defaults what was not
    settings = resolve_serve_settings(packaged, {})
    assert settings.workers == 2 and settings.limits == LimitsParams(max_records=5)
    assert resolve_serve_settings(ServeParams.model_validate({}), {}).limits == LimitsParams()
