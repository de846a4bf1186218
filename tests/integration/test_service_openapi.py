"""The OpenAPI document tells the truth (issue 24): over a real `bentoml serve` on 127.0.0.1, ``/docs.json`` and
``/schema.json`` keep the null option of nullable fields and the integer option of ids (BentoML's conversion lost
them), document the one error shape for 400, 413, 415 and 503, and real answers validate against them; a seeded
schemathesis run (``bench/schema_fuzz.py``, 5,000 cases there) with ``not_a_server_error`` and
``response_schema_conformance`` finds nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pandas as pd
import pytest

from tabrepro.artefacts import LimitsParams
from tabrepro.serving.openapi import as_json_schema
from tests.support.local_serve import start_server, stop_server

LIMITS = LimitsParams()
SCHEMA_CASES = 200


@pytest.fixture(scope="module")
def url(packaged: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc, address = start_server(packaged / "models" / "serving", bentoml_home=tmp_path_factory.mktemp("openapi"))
    yield address
    stop_server(proc)


@pytest.fixture(scope="module")
def good(packaged: Path) -> dict[str, Any]:
    raw = pd.read_csv(packaged / "raw" / "telco.csv", dtype="str", keep_default_na=False)
    return raw.drop(columns="Churn").iloc[0].to_dict()


def _resolved(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its ``$ref`` to the document's components followed, as plain JSON Schema."""
    if "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return as_json_schema(schema)


def test_the_document_keeps_null_and_integer_options_and_documents_every_error(url):
    httpx.get(f"{url}/docs.json", timeout=10)  # BentoML's conversion edited the record schema in place: the
    doc = httpx.get(f"{url}/docs.json", timeout=10).json()  # second document lost the null and integer options
    predict = doc["paths"]["/predict"]["post"]
    request = _resolved(doc, predict["requestBody"]["content"]["application/json"]["schema"])
    record = request["properties"]["records"]["items"]
    assert {"type": "null"} in record["properties"]["TotalCharges"]["anyOf"]  # was lost: never a blank value
    assert {"type": "integer"} in record["properties"]["customerID"]["anyOf"]
    answers = predict["responses"]
    assert {"200", "400", "413", "415", "503"} <= set(answers)
    for status in ("400", "413", "415", "503"):
        assert answers[status]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert doc["paths"]["/readyz"]["get"]["responses"]["503"]["content"]["application/json"]["schema"]["$ref"]
    service = httpx.get(f"{url}/schema.json", timeout=10).json()
    route = next(r for r in service["routes"] if r["route"] == "/predict")
    fields = route["input"]["properties"]["records"]["items"]["properties"]
    assert {"type": "null"} in fields["TotalCharges"]["anyOf"] and {"type": "integer"} in fields["customerID"]["anyOf"]


def test_real_answers_validate_against_the_document(url, good):
    doc = httpx.get(f"{url}/docs.json", timeout=10).json()
    answers = doc["paths"]["/predict"]["post"]["responses"]
    blank = {**good, "customerID": 17, "TotalCharges": None}  # an integer id and a null, as the schema allows
    cases = {
        "200": {"records": [good, blank]},
        "400": {"records": [{**good, "tenure": "abc"}]},
        "413": {"records": [{}] * (LIMITS.max_records + 1)},
    }
    for status, body in cases.items():
        response = httpx.post(f"{url}/predict", json=body, timeout=30)
        assert str(response.status_code) == status, response.text
        schema = _resolved(doc, answers[status]["content"]["application/json"]["schema"])
        jsonschema.validate(response.json(), schema)
    assert httpx.post(f"{url}/predict", json=cases["200"], timeout=30).json()["predictions"][1]["id"] == "17"
    refused = httpx.post(f"{url}/predict", content=b"{}", headers={"content-type": "text/plain"}, timeout=10)
    assert refused.status_code == 415
    jsonschema.validate(refused.json(), _resolved(doc, answers["415"]["content"]["application/json"]["schema"]))
    with pytest.raises(jsonschema.ValidationError):  # the validation can fail: BentoML's old 400 shape
        jsonschema.validate([{"error": "x"}], _resolved(doc, answers["400"]["content"]["application/json"]["schema"]))


def test_schemathesis_finds_no_server_error_and_no_answer_off_the_document(url):
    from bench.schema_fuzz import schema_fuzz

    result = schema_fuzz(url, cases=SCHEMA_CASES, seed_value=24)
    counts = result["counts"]
    assert result["failures"] == [], result["failures"][:3]
    assert counts["POST /predict positive"] + counts["POST /predict negative"] >= SCHEMA_CASES * 0.9, counts
    assert counts["HTTP 200"] > 10 and counts["HTTP 400"] > 10, counts  # both sides of the contract were reached


def test_the_error_shape_is_documented_once(url):
    doc = httpx.get(f"{url}/docs.json", timeout=10).json()
    error = doc["components"]["schemas"]["Error"]
    assert error["required"] == ["error"] and error["additionalProperties"] is False
    assert json.dumps(doc).count('"#/components/schemas/InvalidArgument"') == 0  # BentoML's shapes are gone
