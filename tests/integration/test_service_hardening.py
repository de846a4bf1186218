"""The service under hostile input and faults, over a real `bentoml serve` on 127.0.0.1: wrong content types get
415 (a multipart body without a boundary was a 500), bodies over the byte or record limit 413 before they are parsed,
long ids and unknown top-level keys a 400 that does not echo them, unknown paths no metric series of their own, the
OpenAPI document a record model a client can fill, refusals one WARNING line each, a full disk counted line by line;
and every start-up fault leaves the worker up and `/readyz` 503 with a reason that names the file, not its path."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from tabrepro.artefacts import LimitsParams, ServingManifest, canonical_json, sha256_bytes
from tabrepro.config.params import load_params
from tabrepro.contract.spec import load_contract
from tabrepro.serving.openapi import as_json_schema
from tests.conftest import REPO
from tests.support.local_serve import free_ports, start_server, stop_server

LIMITS = LimitsParams()
N_FULL_DISK = 7


@pytest.fixture(scope="module")
def served(packaged: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One server whose prediction log is on a full disk (a link to ``/dev/full``: the kernel's ENOSPC)."""
    work = tmp_path_factory.mktemp("hardening")
    full = work / "predictions.jsonl"
    full.symlink_to("/dev/full")
    proc, url = start_server(
        packaged / "models" / "serving", bentoml_home=work / "home", env={"TABREPRO_PREDICTION_LOG": str(full)}
    )
    state = {"proc": proc, "url": url, "log": None}
    yield state
    if state["log"] is None:
        stop_server(proc)


@pytest.fixture(scope="module")
def good(packaged: Path) -> dict[str, Any]:
    raw = pd.read_csv(packaged / "raw" / "telco.csv", dtype="str", keep_default_na=False)
    return raw.drop(columns="Churn").iloc[0].to_dict()


def _post(url: str, body: Any = None, *, content: Any = None, content_type: str | None = "application/json"):
    headers = {"content-type": content_type} if content_type is not None else {}
    data = json.dumps(body).encode() if content is None else content
    return httpx.post(f"{url}/predict", content=data, headers=headers, timeout=60)


def test_a_body_that_is_not_json_gets_415(served, good):
    url = served["url"]
    cases = {
        "multipart/form-data": b"--x\r\n",  # no boundary: was a 500 from the form parser
        "multipart/form-data; boundary=x": b'--x\r\nContent-Disposition: form-data; name="records"\r\n\r\n[]\r\n--x--',
        "text/plain": json.dumps({"records": [good]}).encode(),
        "application/x-www-form-urlencoded": b"records=1",
        None: json.dumps({"records": [good]}).encode(),
    }
    for content_type, content in cases.items():
        response = _post(url, content=content, content_type=content_type)
        assert response.status_code == 415, (content_type, response.text)
        assert "Content-Type: expected application/json" in response.json()["error"]
    assert _post(url, {"records": [good]}, content_type="application/json; charset=utf-8").status_code == 200


def test_a_body_over_the_byte_limit_gets_413_before_it_is_parsed(served):
    url = served["url"]
    over = b"{" + b" " * LIMITS.max_body_bytes + b"}"  # not even JSON: a parser would have answered 400
    declared = _post(url, content=over)
    assert declared.status_code == 413, declared.text
    assert f"more than the limit of {LIMITS.max_body_bytes:,}" in declared.json()["error"]

    def streamed() -> Iterator[bytes]:  # chunked: no Content-Length to check, the guard counts the bytes
        for _ in range(LIMITS.max_body_bytes // 1_000_000 + 2):
            yield b" " * 1_000_000

    chunked = _post(url, content=streamed())
    assert chunked.status_code == 413 and "body: more than the limit" in chunked.text, chunked.text


def test_more_records_than_the_limit_get_413_before_any_is_validated(served):
    response = _post(served["url"], {"records": [{}] * (LIMITS.max_records + 1)})
    assert response.status_code == 413, response.text  # validated, each {} would be a 400 for missing fields
    assert f"at most {LIMITS.max_records:,} records" in response.text


def test_long_text_and_unknown_keys_are_refused_without_being_echoed(served, good):
    url = served["url"]
    for field in ("customerID", "Contract"):
        response = _post(url, {"records": [{**good, field: "x" * 100_000}]})
        assert response.status_code == 400, response.text
        assert f"records[0].{field}: text longer than {LIMITS.max_text_chars} characters" in response.text
        assert "(100,000 characters)" in response.text and len(response.text) < 1000
    unknown = _post(url, {"records": [good], "callback": "http://example.org"})
    assert unknown.status_code == 400 and "callback: Extra inputs are not permitted (extra_forbidden)" in unknown.text
    huge_key = _post(url, {"records": [{**good, "k" * 100_000: 1}]})
    assert huge_key.status_code == 400 and "unknown field" in huge_key.text and len(huge_key.text) < 1000


def test_unknown_paths_add_no_metric_series(served):
    url = served["url"]
    before = httpx.get(f"{url}/metrics", timeout=10).text
    paths = [f"/probe-{n}-{'z' * n}" for n in range(40)]
    assert {httpx.get(f"{url}{p}", timeout=10).status_code for p in paths} == {404}
    after = httpx.get(f"{url}/metrics", timeout=10).text
    assert not any(p in after for p in paths)
    grew = len(after.splitlines()) - len(before.splitlines())
    assert grew <= 5, grew  # a few known series that appear on first use; 40 paths used to add ~800
    unknown = re.search(r"^tabrepro_unknown_path_requests_total (\S+)$", after, re.M)
    assert unknown is not None and float(unknown.group(1)) >= len(paths)


def _example(schema: dict[str, Any]) -> Any:
    """The value a schema-driven client would fill in first: an enum's first level, a range's lower bound."""
    if "anyOf" in schema:
        return _example(schema["anyOf"][0])
    if "enum" in schema:
        return schema["enum"][0]
    if schema.get("type") in ("integer", "number"):
        return schema.get("minimum", 0)
    return "schema-client-1"


def test_the_openapi_document_describes_a_record_a_client_can_fill(served, packaged: Path):
    url = served["url"]
    spec = httpx.get(f"{url}/docs.json", timeout=10).json()
    request = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    schema = spec["components"]["schemas"][request["$ref"].rsplit("/", 1)[1]] if "$ref" in request else request
    schema = as_json_schema(schema)  # OpenAPI 3.0's nullable, as JSON Schema
    assert schema["additionalProperties"] is False
    records = schema["properties"]["records"]
    assert records["maxItems"] == LIMITS.max_records
    item = records["items"]
    contract = load_contract(load_params(REPO / "params.yaml")["data"])
    assert set(item["properties"]) == {contract.id_column, *contract.features}
    assert item["required"] == list(contract.features) and item["additionalProperties"] is False
    assert item["properties"]["Contract"]["enum"] == list(contract.features["Contract"].values)
    tenure = contract.features["tenure"]
    assert item["properties"]["tenure"] == {"type": "integer", "minimum": tenure.min, "maximum": tenure.max} | (
        {"description": tenure.description} if tenure.description else {}
    )
    record = {name: _example(field) for name, field in item["properties"].items()}
    response = _post(url, {"records": [record]})
    assert response.status_code == 200, response.text


def test_a_seeded_fuzz_run_gets_no_5xx(served, packaged: Path):
    """200 cases of bench/fuzz_service.py (valid, near-valid and hostile, seeded): no 5xx, the server alive."""
    from bench.fuzz_service import fuzz

    contract = load_contract(load_params(REPO / "params.yaml")["data"])
    counts = fuzz(served["url"], contract, LIMITS, n=200, seed_value=13)
    assert counts["5xx"] == 0 and counts["dead"] == 0, counts
    assert counts["2xx"] > 10 and counts["4xx"] > 10, counts  # it reached both sides of the contract
    assert httpx.get(f"{served['url']}/livez", timeout=10).status_code == 200


def test_a_full_disk_is_counted_line_by_line_and_refusals_are_logged_once(served, good):
    """Last in this module: it stops the server to read its log."""
    url = served["url"]
    records = [{**good, "customerID": f"disk-{n}"} for n in range(3)]
    for _ in range(N_FULL_DISK):
        assert _post(url, {"records": records}).status_code == 200
    _post(url, {"records": [{**good, "tenure": "y" * 200}]})  # one refusal more, to find in the log
    expected = N_FULL_DISK * len(records)
    deadline, dropped = time.monotonic() + 10, 0.0
    while time.monotonic() < deadline and dropped < expected:
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
        found = re.search(r'^tabrepro_prediction_log_dropped_total\{reason="write_error"\} (\S+)$', metrics, re.M)
        dropped = float(found.group(1)) if found else 0.0
        time.sleep(0.1)
    served["log"] = log = stop_server(served["proc"])
    # every scored request of this module went to the full disk: the test's own lines and the earlier 200s
    assert dropped >= expected, (dropped, expected)
    assert "Traceback" not in log and "Exception in thread" not in log
    assert "Completed cleanup hook: close_prediction_log" in log
    refusals = [line for line in log.splitlines() if "refused POST /predict" in line]
    assert refusals and all("[WARNING]" in line for line in refusals)
    assert all("prediction log" in line for line in log.splitlines() if "[ERROR]" in line)  # only the disk's
    assert "x" * 200 not in log and "y" * 100 not in log  # values are cut in the log too
    assert log.count(f"records[0].tenure: expected a number, got '{'y' * 40}...'") == 1  # logged once


# --- start-up faults ---------------------------------------------------------------------------------------------


def _reseal(folder: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    """Edit the manifest's keys and seal its text again, so the missing or unknown key is what is wrong."""
    manifest = json.loads((folder / "manifest.json").read_text())
    content = {k: v for k, v in manifest.items() if k != "seal"}
    edit(content)
    (folder / "manifest.json").write_text(json.dumps({**content, "seal": sha256_bytes(canonical_json(content))}))


def _not_onnx(folder: Path) -> None:
    """Junk in every graph file the manifest names, with its true sha256 in a properly sealed manifest: only ONNX
    Runtime can refuse it."""
    junk, digest = b"this is not an ONNX graph", sha256_bytes(b"this is not an ONNX graph")
    manifest = json.loads((folder / "manifest.json").read_text())
    graphs = manifest.get("graphs") or {"any": {"file": "model.onnx"}}
    for graph in graphs.values():
        (folder / graph["file"]).write_bytes(junk)
        graph["sha256"] = digest
    fields = {k: v for k, v in manifest.items() if k not in ("schema_version", "seal")} | {"onnx_sha256": digest}
    if manifest.get("graphs"):
        fields["graphs"] = graphs
    (folder / "manifest.json").write_text(json.dumps(ServingManifest.sealed(**fields).model_dump(mode="json")))


def _unreadable_manifest(folder: Path) -> None:
    (folder / "manifest.json").unlink()
    (folder / "manifest.json").mkdir()  # as root, a directory is what cannot be read as a file


FAULTS: dict[str, tuple[Callable[[Path], None], str]] = {
    "missing key": (lambda f: _reseal(f, lambda m: m.pop("threshold")), "manifest.json"),
    "unknown key": (lambda f: _reseal(f, lambda m: m.update(extra_key=1)), "extra_key"),
    "not ONNX": (_not_onnx, ".onnx: ONNX Runtime cannot load it"),
    "unreadable": (_unreadable_manifest, "manifest.json: cannot read it"),
}


def test_every_start_up_fault_keeps_the_worker_up_and_names_the_file_not_its_path(packaged: Path, tmp_path: Path):
    def launch(case: str, port: int) -> tuple[str, Any, str]:
        folder = tmp_path / case.replace(" ", "-") / "serving"
        shutil.copytree(packaged / "models" / "serving", folder)
        env = {}
        if case == "bad candidate":  # the primary is fine; the rollout's candidate is not ONNX
            candidate = folder.parent / "candidate"
            shutil.copytree(packaged / "models" / "serving", candidate)
            _not_onnx(candidate)
            env = {"TABREPRO_ROLLOUT_MODE": "shadow", "TABREPRO_CANDIDATE_DIR": str(candidate)}
        else:
            FAULTS[case][0](folder)
        return (case, *start_server(folder, bentoml_home=tmp_path / "home", env=env, port=port))

    named = {case: text for case, (_, text) in FAULTS.items()} | {"bad candidate": ".onnx: ONNX Runtime cannot load it"}
    with ThreadPoolExecutor(len(named)) as pool:
        servers = list(pool.map(launch, named, free_ports(len(named))))
    try:
        time.sleep(3)  # a crash loop restarts the worker within this; a worker that stays up logs "not ready" once
        answers = {case: httpx.get(f"{url}/readyz", timeout=10) for case, _, url in servers}
        alive = {case: httpx.get(f"{url}/livez", timeout=10).status_code for case, _, url in servers}
        predict = {case: _post(url, {"records": [{}]}).status_code for case, _, url in servers}
    finally:
        logs = {case: stop_server(proc) for case, proc, _ in servers}
    for case, ready in answers.items():
        assert ready.status_code == 503 and named[case] in ready.text, (case, ready.text)
        assert re.search(r"(manifest\.json|\w\.onnx): ", ready.text), (case, ready.text)  # the file, by name
        assert str(tmp_path) not in ready.text and "/tmp" not in ready.text, (case, ready.text)
        assert alive[case] == 200 and predict[case] == 503, case
        assert logs[case].count("not ready:") == 1, (case, logs[case][-3000:])
        assert str(tmp_path) in logs[case]  # the operator's log keeps the full path


def test_two_workers_serve_and_each_is_a_process(packaged: Path, tmp_path: Path, good):
    import psutil

    proc, url = start_server(
        packaged / "models" / "serving", bentoml_home=tmp_path / "home", env={"TABREPRO_WORKERS": "2"}
    )
    try:
        workers = [
            p
            for p in psutil.Process(proc.pid).children(recursive=True)
            if "_bentoml_impl.worker" in " ".join(p.cmdline())
        ]
        statuses = {_post(url, {"records": [good]}).status_code for _ in range(20)}
        ready = httpx.get(f"{url}/readyz", timeout=10).status_code
    finally:
        stop_server(proc)
    assert len(workers) == 2 and statuses == {200} and ready == 200
