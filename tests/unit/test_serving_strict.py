"""Strict reading in the service (issue 24): the request body's JSON, start-up files and numeric settings, the one
error shape, and the OpenAPI 3.0 form of nullable values. Pure functions, no server."""

from __future__ import annotations

import json

import pytest

from tabrepro.errors import ConfigError
from tabrepro.serving.body import MAX_DEPTH, BodyError, parse_strict_json
from tabrepro.serving.errors import error_message
from tabrepro.serving.openapi import as_json_schema, as_openapi30
from tabrepro.serving.runtime import ServingError
from tabrepro.serving.startup import MAX_FILE_BYTES, parse_number, read_bounded_json


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"records": [{"tenure": "abc", "tenure": 1}]}', 'key "tenure": given more than once in one object'),
        (b'{"id": ' + b"9" * 4000 + b"}", '"id": a number of 4,000 characters, more than the limit of 256'),
        (b'{"x": -' + b"1" * 300 + b".5}", '"x": a number of 303 characters, more than the limit of 256'),
        (b"[" + b"7" * 300 + b"]", "body: a number of 300 characters, more than the limit of 256"),
        (b'{"x": NaN}', "body: NaN is not JSON (numbers must be finite)"),
        (b"[-Infinity]", "body: -Infinity is not JSON (numbers must be finite)"),
        (b"[" * 200_000, "body: JSON nested too deeply (at most about 1,000 levels)"),
        (b'{"a": ', "body: not valid JSON: Expecting value at line 1, column 7"),
        (b"\xff\xfe{", "body: not UTF-8 text (byte 0)"),
    ],
)
def test_the_body_is_read_strictly(body, message):
    with pytest.raises(BodyError) as refused:
        parse_strict_json(body, max_number_chars=256)
    assert str(refused.value) == message


def test_strict_json_reads_what_json_reads():
    body = {"records": [{"a": 1, "b": -2.5e3, "c": None, "d": [True, "x" * 300]}], "n": "9" * 256}
    nested = [[]] * 3
    for value in (body, nested, "text", 0):
        assert parse_strict_json(json.dumps(value).encode(), max_number_chars=256) == value
    deep = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert parse_strict_json(deep, max_number_chars=9, max_depth=MAX_DEPTH) is not None
    with pytest.raises(BodyError, match=f"JSON nested too deeply \\(at most {MAX_DEPTH} levels\\)"):
        parse_strict_json(b"[" + deep + b"]", max_number_chars=9, max_depth=MAX_DEPTH)
    long_key = '{"' + "k" * 100 + '": 1, "' + "k" * 100 + '": 2}'
    with pytest.raises(BodyError, match=r"\(100 characters\)"):  # a key is cut in the message
        parse_strict_json(long_key.encode(), max_number_chars=9)


@pytest.mark.parametrize("raw", ["²", "٣", "1_0", "0", "65", "-1", "+2", "1e1", "2.0", "", " ", "0x10"])
def test_a_worker_count_is_ascii_digits_in_range(raw):
    with pytest.raises(ConfigError, match="TABREPRO_WORKERS: expected a whole number from 1 to 64"):
        parse_number(raw, name="TABREPRO_WORKERS", low=1, high=64, integer=True)


def test_numbers_in_settings():
    assert parse_number(" 3 ", name="W", low=1, high=64, integer=True) == 3
    assert parse_number("12.5%", name="P", low=0, high=100) == 12.5
    for raw in ("nan", "inf", "1e2", "١٠", "101", "-0.5"):
        with pytest.raises(ConfigError, match=r"^P: expected a percentage from 0 to 100, got "):
            parse_number(raw, name="P", low=0, high=100, kind="a percentage")


def test_start_up_files_are_bounded(tmp_path):
    cases = {
        "deep.json": ("[" * 200_000, "JSON nested too deeply"),
        "twice.json": ('{"a": 1, "a": 2}', 'key "a": given more than once'),
        "big.json": (" " * (MAX_FILE_BYTES + 1), f"more than {MAX_FILE_BYTES:,} bytes"),
        "cut.json": ('{"a": [1, 2', "not valid JSON"),
    }
    for name, (text, expected) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ServingError, match=f"{name}: .*{expected}.* \\(package it\\)"):
            read_bounded_json(tmp_path / name, error=ServingError, hint="package it")
    with pytest.raises(ServingError, match=r"missing\.json: not found"):
        read_bounded_json(tmp_path / "missing.json", error=ServingError)
    (tmp_path / "ok.json").write_text('{"serve": {"workers": 2}}')
    assert read_bounded_json(tmp_path / "ok.json", error=ServingError) == {"serve": {"workers": 2}}


def test_a_worker_count_that_crashed_the_class_declaration_falls_back_to_one(tmp_path):
    from tabrepro.serving.declaration import check_workers, configured_workers, declare

    (tmp_path / "manifest.json").write_text("[" * 200_000)  # was an uncaught RecursionError at import
    env = {"TABREPRO_SERVING_DIR": str(tmp_path)}
    assert declare(env).manifest is None and configured_workers(env, declare(env).manifest) == 1
    assert configured_workers({"TABREPRO_WORKERS": "²"}, None) == 1  # was a ValueError from int()
    with pytest.raises(ConfigError, match="TABREPRO_WORKERS"):  # and the worker says why (a 503)
        check_workers({"TABREPRO_WORKERS": "²"})


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (400, b'[{"error": "records: too few"}]', "records: too few"),  # BentoML's exception shape
        (
            400,
            b'{"error": "1 validation error for PredictRequest", "detail": [{"type": "extra_forbidden", '
            b'"loc": ["x"], "msg": "Extra inputs are not permitted"}]}',
            "1 validation error for PredictRequest: x: Extra inputs are not permitted (extra_forbidden)",
        ),
        (415, b'{"error": "Content-Type: expected application/json"}', "Content-Type: expected application/json"),
        (503, b"not ready: manifest.json: not found", "not ready: manifest.json: not found"),  # starlette's text
        (404, b"", "Not Found"),
        (500, b'{"error": "An unexpected error has occurred, please check the server log."}', "An unexpected"),
    ],
)
def test_every_error_body_becomes_one_message(status, body, message):
    assert error_message(status, body).startswith(message)


def test_nullable_values_in_openapi_30_and_back():
    schema = {"anyOf": [{"type": "number", "minimum": 0}, {"type": "null"}], "description": "d"}
    assert as_openapi30(schema) == {"type": "number", "minimum": 0, "description": "d", "nullable": True}
    levels = {"anyOf": [{"type": "string", "enum": ["a", "b"]}, {"type": "null"}]}
    assert as_openapi30(levels) == {"type": "string", "enum": ["a", "b", None], "nullable": True}
    ident = {"anyOf": [{"type": "string"}, {"type": "integer"}]}
    assert as_openapi30({"properties": {"id": ident}}) == {"properties": {"id": ident}}  # no null: unchanged
    back = as_json_schema(as_openapi30(schema))
    assert back == {"anyOf": [{"type": "number", "minimum": 0, "description": "d"}, {"type": "null"}]}
