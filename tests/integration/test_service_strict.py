"""Issue 24 over a real `bentoml serve` on 127.0.0.1: headers and JSON read strictly (a repeated Content-Type is a
415, a repeated key or a number of 4,000 digits a 400 naming the key), an over-limit body answered 413 to a client
that sends its whole body first (Python's http.client), every non-2xx answer in one shape, the start-up log naming
the provider and the node placement; and the start-up faults that crashed (a deeply nested manifest,
``TABREPRO_WORKERS=²``) leave the worker up and ``/readyz`` 503 with the reason. Each failed before its fix."""

from __future__ import annotations

import http.client
import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from tabrepro.artefacts import LimitsParams
from tests.support.local_serve import free_ports, start_server, stop_server

LIMITS = LimitsParams()


@pytest.fixture(scope="module")
def served(packaged: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    proc, url = start_server(packaged / "models" / "serving", bentoml_home=tmp_path_factory.mktemp("strict"))
    state = {"proc": proc, "url": url, "log": None}
    yield state
    if state["log"] is None:
        stop_server(proc)


@pytest.fixture(scope="module")
def good(packaged: Path) -> dict[str, Any]:
    raw = pd.read_csv(packaged / "raw" / "telco.csv", dtype="str", keep_default_na=False)
    return raw.drop(columns="Churn").iloc[0].to_dict()


def _post(url: str, content: bytes, headers: list[tuple[str, str]] | None = None) -> httpx.Response:
    return httpx.post(f"{url}/predict", content=content, headers=headers or [("content-type", "application/json")])


def _error(response: httpx.Response) -> str:
    """The message of an error answer, checked to be in the one shape: {"error": "..."} and nothing else."""
    assert response.headers["content-type"] == "application/json", response.headers
    body = response.json()
    assert isinstance(body, dict) and list(body) == ["error"] and isinstance(body["error"], str), body
    return body["error"]


def test_a_repeated_content_type_is_a_415_whatever_comes_first(served, good):
    body = json.dumps({"records": [good]}).encode()
    for first in ("multipart/form-data", "text/plain", "application/x-www-form-urlencoded", "application/json"):
        second = "text/plain" if first == "application/json" else "application/json"
        response = _post(served["url"], body, [("Content-Type", first), ("Content-Type", second)])
        assert response.status_code == 415, (first, response.text)  # was a 500 (multipart first) or a 200
        assert "got 2 Content-Type headers" in _error(response)


def test_a_key_given_twice_in_a_record_is_a_400_naming_it(served, good):
    text = json.dumps({"records": [good]})
    twice = text.replace('"tenure": ', '"tenure": "abc", "tenure": ', 1)
    response = _post(served["url"], twice.encode())
    assert response.status_code == 400, response.text  # was a 200: the last one won
    assert _error(response) == 'key "tenure": given more than once in one object'


def test_a_number_counts_its_digits_against_the_text_limit(served, good):
    digits = "9" * 4000
    text = json.dumps({"records": [{**good, "customerID": 1}]}).replace('"customerID": 1', f'"customerID": {digits}')
    response = _post(served["url"], text.encode())
    assert response.status_code == 400, response.text[:300]  # was a 200 that echoed the 4,000 digits back
    assert (
        _error(response)
        == f'"customerID": a number of 4,000 characters, more than the limit of {LIMITS.max_text_chars}'
    )
    short = json.dumps({"records": [{**good, "customerID": 12345}]}).encode()
    assert _post(served["url"], short).status_code == 200


def test_an_over_limit_body_sent_whole_first_gets_its_413(served):
    """Python's http.client sends the whole body before it reads: it got a connection reset, not the 413."""
    host, port = served["url"].removeprefix("http://").split(":")
    body = b"{" + b" " * int(LIMITS.max_body_bytes * 1.2) + b"}"  # ~19.5 MB, over the 16 MiB limit
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        status, answer = response.status, json.loads(response.read())
    finally:
        conn.close()
    assert status == 413 and "more than the limit" in answer["error"], (status, answer)

    def chunks() -> Iterator[bytes]:
        for _ in range(LIMITS.max_body_bytes // 1_000_000 + 3):
            yield b" " * 1_000_000

    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.request(
            "POST", "/predict", body=chunks(), headers={"Content-Type": "application/json"}, encode_chunked=True
        )
        response = conn.getresponse()
        status = response.status
    finally:
        conn.close()
    assert status == 413


def test_every_error_answer_has_one_shape(served, good):
    url = served["url"]
    bodies = {
        400: [
            json.dumps({"records": [{**good, "tenure": "abc"}]}).encode(),  # the contract's
            json.dumps({"records": [good], "callback": "x"}).encode(),  # BentoML's parser's
            json.dumps({"records": "everything"}).encode(),
            b"{not json",
            json.dumps({"records": []}).encode(),
        ],
        413: [json.dumps({"records": [{}] * (LIMITS.max_records + 1)}).encode()],
    }
    for status, contents in bodies.items():
        for content in contents:
            response = _post(url, content)
            assert response.status_code == status, response.text
            assert _error(response)
    assert "callback: Extra inputs are not permitted" in _error(_post(url, bodies[400][1]))
    assert _error(_post(url, b"{}", [("content-type", "text/plain")])).startswith("Content-Type")  # 415
    assert _error(httpx.get(f"{url}/no-such-path")) == "Not Found"
    assert _error(httpx.delete(f"{url}/predict")) == "Method Not Allowed"


def test_the_start_up_log_names_the_provider_and_the_node_placement(served):
    """Last of the server's tests: it stops the server to read its log."""
    served["log"] = log = stop_server(served["proc"])
    assert re.search(r"serving \S+ on CPUExecutionProvider: model\.onnx \(sha256 [0-9a-f]{12}\)", log), log[-2000:]
    assert re.search(r"primary model\.onnx: \d+ nodes: \d+ on CPUExecutionProvider", log), log[-2000:]


def _deep_manifest(folder: Path) -> None:
    (folder / "manifest.json").write_text("[" * 200_000)


def test_start_up_faults_that_crashed_are_a_503_with_the_reason(packaged: Path, tmp_path: Path):
    cases = {
        "deep manifest": (_deep_manifest, {}, "manifest.json: JSON nested too deeply"),
        "workers ²": (None, {"TABREPRO_WORKERS": "²"}, "TABREPRO_WORKERS: expected a whole number from 1 to 64"),
    }
    servers = {}
    try:
        for (case, (fault, env, _)), port in zip(cases.items(), free_ports(len(cases)), strict=True):
            folder = tmp_path / case.split()[0] / "serving"
            shutil.copytree(packaged / "models" / "serving", folder)
            if fault is not None:
                fault(folder)
            servers[case] = start_server(folder, bentoml_home=tmp_path / "home", env=env, port=port)
        time.sleep(3)  # a crash loop restarts the worker within this
        answers = {case: httpx.get(f"{url}/readyz", timeout=10) for case, (_, url) in servers.items()}
        alive = {case: httpx.get(f"{url}/livez", timeout=10).status_code for case, (_, url) in servers.items()}
    finally:
        logs = {case: stop_server(proc) for case, (proc, _) in servers.items()}
    for case, (_, _, named) in cases.items():
        assert answers[case].status_code == 503 and named in _error(answers[case]), (case, answers[case].text)
        assert alive[case] == 200, case
        assert "RecursionError" not in logs[case] and "Traceback" not in logs[case], logs[case][-3000:]
