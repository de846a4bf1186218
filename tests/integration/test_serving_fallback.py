"""The fallback model over a real `bentoml serve` on 127.0.0.1: a primary whose ONNX graph raises at run time for
some records (rewritten with the onnx helper API, its manifest sealed again as ``package`` seals it) is answered
for by the fallback (a logistic regression packaged from the same sample: "the previous model"), which the answer,
the metrics, ``/readyz`` and the prediction log say; a request both graphs fail on gets a 503 in the one error
shape; a fallback whose data contract differs keeps the service un-ready."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import numpy as np
import onnx
import pandas as pd
import pytest
from onnx import TensorProto, helper, numpy_helper

from tabrepro.artefacts import ServingManifest, sha256_bytes
from tabrepro.onnxrt.placement import graph_for
from tests.conftest import SamplePipelines
from tests.support.local_serve import start_server, stop_server

LOGREG = {"name": "logreg", "params": {"C": 0.05, "max_iter": 500}, "search_space": {}}
PRIMARY_BREAKS_AT, FALLBACK_BREAKS_AT = 100, 110  # tenure (the contract allows 0 to 120; the data has up to 72)


@pytest.fixture(scope="module")
def previous(sample_pipelines: SamplePipelines) -> Path:
    """The same 1,500 rows and split as ``packaged``, another model: the fallback."""
    return sample_pipelines(model=LOGREG)  # shared: read only


def _reseal(folder: Path, **changes: object) -> dict:
    manifest = json.loads((folder / "manifest.json").read_text())
    fields = {k: v for k, v in manifest.items() if k not in ("schema_version", "seal")} | changes
    sealed = ServingManifest.sealed(**fields).model_dump(mode="json")
    (folder / "manifest.json").write_text(json.dumps(sealed))
    return sealed


def breaking_copy(serving: Path, dest: Path, *, tenure_at: int) -> Path:
    """A copy of ``serving`` whose CPU graph raises for any record with ``tenure >= tenure_at``: ``tenure`` passes
    through ``Add(tenure, Gather(zeros[tenure_at], Cast<int64>(tenure)))`` (an index out of bounds is an ONNX Runtime
    error at run time, and the sum is ``tenure`` itself, so every other record scores as before)."""
    shutil.copytree(serving, dest)
    packaged = ServingManifest.model_validate(json.loads((serving / "manifest.json").read_text()))
    graph_file = graph_for(packaged, "CPUExecutionProvider")[0]
    model = onnx.load(dest / graph_file)
    graph = model.graph
    for node in graph.node:
        node.input[:] = ["tenure_checked" if name == "tenure" else name for name in node.input]
    table = numpy_helper.from_array(np.zeros(tenure_at, dtype=np.float32), name="tenure_table")
    graph.initializer.append(table)
    checks = [
        helper.make_node("Cast", ["tenure"], ["tenure_index"], to=TensorProto.INT64, name="check_cast"),
        helper.make_node("Gather", ["tenure_table", "tenure_index"], ["tenure_zero"], name="check_gather"),
        helper.make_node("Add", ["tenure", "tenure_zero"], ["tenure_checked"], name="check_add"),
    ]
    for position, node in enumerate(checks):
        graph.node.insert(position, node)
    data = model.SerializeToString()
    (dest / graph_file).write_bytes(data)
    changes: dict[str, object] = {}
    if graph_file == "model.onnx":
        changes["onnx_sha256"] = sha256_bytes(data)
    if packaged.graphs:
        graphs = {p: g.model_dump() for p, g in packaged.graphs.items()}
        changes["graphs"] = {
            p: {**g, "sha256": sha256_bytes(data)} if g["file"] == graph_file else g for p, g in graphs.items()
        }
    _reseal(dest, **changes)
    return dest


def _records(work: Path, n: int) -> list[dict]:
    raw = pd.read_csv(work / "raw" / "telco.csv", dtype="str", keep_default_na=False)
    test_ids = pd.read_parquet(work / "reports" / "predictions_test.parquet")["customerID"][:n]
    return raw.set_index("customerID").loc[test_ids].drop(columns="Churn").reset_index().to_dict(orient="records")


def _evaluated(work: Path) -> pd.Series:
    return pd.read_parquet(work / "reports" / "predictions_test.parquet").set_index("customerID")["probability"]


def _metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name}{labels} in /metrics")


def test_fallback_answers_where_the_primary_graph_fails(packaged: Path, previous: Path, tmp_path: Path):
    primary = breaking_copy(packaged / "models" / "serving", tmp_path / "primary", tenure_at=PRIMARY_BREAKS_AT)
    fallback = breaking_copy(previous / "models" / "serving", tmp_path / "fallback", tenure_at=FALLBACK_BREAKS_AT)
    first, second = (json.loads((f / "manifest.json").read_text()) for f in (primary, fallback))
    log_path = tmp_path / "log" / "predictions.jsonl"
    env = {"TABREPRO_FALLBACK_DIR": str(fallback), "TABREPRO_PREDICTION_LOG": str(log_path)}
    records = _records(packaged, 4)
    hit = [records[0], {**records[1], "tenure": str(PRIMARY_BREAKS_AT + 5)}, records[2]]  # the primary fails
    both = [records[3], {**records[1], "tenure": str(FALLBACK_BREAKS_AT + 5)}]  # both fail
    proc, url = start_server(primary, bentoml_home=tmp_path / "home", env=env)
    try:
        ready_before = httpx.get(f"{url}/readyz", timeout=5)
        normal = httpx.post(f"{url}/predict", json={"records": records[:3]}, timeout=10)
        fell_back = httpx.post(f"{url}/predict", json={"records": hit}, timeout=10)
        ready_after = httpx.get(f"{url}/readyz", timeout=5)
        failed = httpx.post(f"{url}/predict", json={"records": both}, timeout=10)
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
        docs = httpx.get(f"{url}/docs.json", timeout=10).json()
    finally:
        server_log = stop_server(proc)
    assert ready_before.status_code == 200 and "degraded" not in ready_before.text
    assert normal.status_code == 200 and normal.json()["answered_by"] == "primary"
    assert {p["role"] for p in normal.json()["predictions"]} == {"primary"}

    assert fell_back.status_code == 200, fell_back.text
    body = fell_back.json()
    assert body["answered_by"] == "fallback"
    assert (body["model_version"], body["model_sha256"]) == (second["version"], second["onnx_sha256"])
    assert body["threshold"] == second["threshold"]
    assert [p["role"] for p in body["predictions"]] == ["fallback"] * 3
    assert {p["model_version"] for p in body["predictions"]} == {second["version"]} != {first["version"]}
    by_id = {p["id"]: p["probability"] for p in body["predictions"]}
    expected = _evaluated(previous)  # the fallback's own scores (the same split), not the primary's
    for record in (records[0], records[2]):
        assert by_id[record["customerID"]] == pytest.approx(expected[record["customerID"]], abs=1e-6)
    assert _metric(metrics, "tabrepro_fallback_records_total", failed_role="primary") == 3
    assert _metric(metrics, "tabrepro_model_errors_total", role="primary", model_version=first["version"]) == 2
    assert _metric(metrics, "tabrepro_model_errors_total", role="fallback", model_version=second["version"]) == 1

    assert ready_after.status_code == 200  # degraded, still in rotation: it answers
    assert ready_after.json()["status"] == "degraded" and "primary model" in ready_after.json()["reason"]

    assert failed.status_code == 503
    error = failed.json()
    assert list(error) == ["error"] and "fallback" in error["error"] and "Traceback" not in error["error"]
    assert "check_gather" in server_log  # the server's log keeps ONNX Runtime's error, the client does not
    assert "check_gather" not in error["error"]

    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    logged = [line for line in lines if line["request_id"] == body["request_id"]]
    assert [(x["role"], x["served"], x["model_version"]) for x in logged] == [("fallback", True, second["version"])] * 3
    assert len(lines) == 6  # the first request's 3 lines and the fallback's 3; the 503 wrote none

    response = docs["components"]["schemas"]["PredictResponse"]
    assert "answered_by" in response["required"] and response["properties"]["answered_by"]["enum"][-1] == "fallback"
    assert "degraded" in docs["paths"]["/readyz"]["get"]["responses"]["200"]["description"]


def test_a_fallback_with_another_contract_is_refused_at_start(packaged: Path, tmp_path: Path):
    changed = tmp_path / "changed"
    shutil.copytree(packaged / "models" / "serving", changed)
    manifest = json.loads((changed / "manifest.json").read_text())
    manifest["contract"]["features"]["PaymentMethod"]["values"].append("Crypto")
    _reseal(changed, contract=manifest["contract"], version="previous")
    proc, url = start_server(
        packaged / "models" / "serving", bentoml_home=tmp_path / "home", env={"TABREPRO_FALLBACK_DIR": str(changed)}
    )
    try:
        ready = httpx.get(f"{url}/readyz", timeout=5)
    finally:
        stop_server(proc)
    assert ready.status_code == 503
    reason = ready.json()["error"]
    assert "fallback's data contract differs" in reason and "contract.features.PaymentMethod.values" in reason
    assert str(tmp_path) not in reason  # folders by name only
