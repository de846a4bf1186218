"""The packaged model served by a real `bentoml serve` over HTTP on 127.0.0.1: train/serve parity end to end,
every bad payload refused with its record and field named, and an altered model or manifest refused at start-up."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.support.local_serve import start_server, stop_server


@pytest.fixture(scope="module")
def server(packaged: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc, url = start_server(packaged / "models" / "serving", bentoml_home=tmp_path_factory.mktemp("bentoml-home"))
    yield url
    stop_server(proc)


def _raw_test_records(packaged: Path) -> list[dict]:
    raw = pd.read_csv(packaged / "raw" / "telco.csv", dtype="str", keep_default_na=False)
    test_ids = pd.read_parquet(packaged / "reports" / "predictions_test.parquet")["customerID"]
    rows = raw.set_index("customerID").loc[test_ids].drop(columns="Churn").reset_index()
    return rows.to_dict(orient="records")  # raw text, as exported: " " TotalCharges, "0"/"1" SeniorCitizen


def test_http_predictions_equal_evaluated_predictions(packaged: Path, server: str):
    assert httpx.get(f"{server}/readyz", timeout=5).status_code == 200
    records = _raw_test_records(packaged)
    answers = []
    for start in range(0, len(records), 100):
        response = httpx.post(f"{server}/predict", json={"records": records[start : start + 100]}, timeout=30)
        assert response.status_code == 200, response.text
        answers += response.json()["predictions"]
    served = pd.DataFrame(answers).set_index("id")
    evaluated = pd.read_parquet(packaged / "reports" / "predictions_test.parquet").set_index("customerID")
    assert len(served) == len(evaluated)
    np.testing.assert_allclose(served.loc[evaluated.index, "probability"], evaluated["probability"], rtol=0, atol=1e-6)
    assert (served.loc[evaluated.index, "label"].to_numpy() == evaluated["label"].to_numpy()).all()
    manifest = json.loads((packaged / "models/serving/manifest.json").read_text())
    body = httpx.post(f"{server}/predict", json={"records": records[:1]}, timeout=10).json()
    assert body["model_sha256"] == manifest["onnx_sha256"]
    assert body["model_version"] == manifest["version"]


def _bad_payloads(good: dict) -> dict[str, tuple[dict, str]]:
    missing = {k: v for k, v in good.items() if k != "tenure"}
    return {
        "missing field": ({"records": [good, {**missing, "customerID": "x1"}]}, "records[1].tenure: Field required"),
        "wrong type": ({"records": [{**good, "MonthlyCharges": "lots"}]}, "records[0].MonthlyCharges"),
        "unknown category": ({"records": [{**good, "Contract": "Three year"}]}, "records[0].Contract"),
        "out of range": (
            {"records": [good, {**good, "customerID": "x1"}, {**good, "customerID": "x2", "tenure": -3}]},
            "records[2].tenure: expected an integer between 0 and 120, got '-3'",
        ),
        "repeated id": (
            {"records": [good, {**good, "customerID": f" {good['customerID']}"}]},
            f"records[1].customerID: duplicate values in a column that must be unique, got ' {good['customerID']}' "
            "(first at records[0])",
        ),
        "unknown field": ({"records": [{**good, "Contrct": "One year"}]}, "records[0].Contrct: unknown field"),
        "empty batch": ({"records": []}, "expected 1 to"),
        "not a list": ({"records": "everything"}, "records"),
    }


def test_bad_payloads_get_400_naming_record_and_field(packaged: Path, server: str):
    good = _raw_test_records(packaged)[0]
    for case, (payload, expected) in _bad_payloads(good).items():
        response = httpx.post(f"{server}/predict", json=payload, timeout=10)
        assert response.status_code == 400, (case, response.text)
        assert expected in response.text, (case, response.text)
    assert httpx.post(f"{server}/predict", json={"records": [good]}, timeout=10).status_code == 200
    metrics = httpx.get(f"{server}/metrics", timeout=10).text
    for reason in ("missing_field", "unknown_category", "out_of_range", "unknown_field", "batch_size", "duplicate_id"):
        assert f'tabrepro_rejected_requests_total{{reason="{reason}"}}' in metrics, reason
    served = [line for line in metrics.splitlines() if line.startswith("tabrepro_predicted_probability_count ")]
    assert served and float(served[0].split()[1]) >= 1  # the histogram is exported at 0 until an answer is served


JSON_TYPED = {"array": [1, 2], "empty array": [], "object": {"a": [None]}, "true": True, "false": False}


def test_json_arrays_objects_and_booleans_get_400_naming_the_field_in_every_field(packaged: Path, server: str):
    """Whatever JSON type lands in whatever field, the answer is a 400 naming the record and field (never a 5xx):
    the value is judged as the token its JSON text would be in a file."""
    good = _raw_test_records(packaged)[0]
    for field in good:
        for kind, value in JSON_TYPED.items():
            response = httpx.post(f"{server}/predict", json={"records": [good, {**good, field: value}]}, timeout=10)
            assert response.status_code == 400, (field, kind, response.text)
            assert f"records[1].{field}: " in response.text, (field, kind, response.text)
    overflow = json.dumps({"records": [{**good, "tenure": "HUGE"}]}).replace('"HUGE"', "1e400")  # inf once parsed
    response = httpx.post(f"{server}/predict", content=overflow, headers={"content-type": "application/json"})
    assert response.status_code == 400 and "records[0].tenure: expected a number" in response.text, response.text
    assert httpx.post(f"{server}/predict", json={"records": [good]}, timeout=10).status_code == 200


def test_altered_model_is_never_ready(packaged: Path, tmp_path: Path):
    altered = tmp_path / "serving"
    shutil.copytree(packaged / "models" / "serving", altered)
    with (altered / "model.onnx").open("ab") as fh:
        fh.write(b"\0")
    proc, url = start_server(altered, bentoml_home=tmp_path / "home")
    try:
        assert httpx.get(f"{url}/readyz", timeout=5).status_code == 503
        assert httpx.post(f"{url}/predict", json={"records": [{}]}, timeout=10).status_code == 503
    finally:
        log = stop_server(proc)
    assert "not ready" in log
    assert "does not match" in log  # the start-up log says why: the sha256 check failed


def test_edited_manifest_is_never_ready(packaged: Path, tmp_path: Path):
    """A threshold edited after packaging (model.onnx untouched) is refused like an altered model."""
    edited = tmp_path / "serving"
    shutil.copytree(packaged / "models" / "serving", edited)
    manifest = json.loads((edited / "manifest.json").read_text())
    manifest["threshold"] = 0.01  # every customer would now be flagged
    (edited / "manifest.json").write_text(json.dumps(manifest, indent=2))
    proc, url = start_server(edited, bentoml_home=tmp_path / "home")
    try:
        ready = httpx.get(f"{url}/readyz", timeout=5)
        assert ready.status_code == 503 and "edited after packaging" in ready.text, ready.text
        assert httpx.post(f"{url}/predict", json={"records": [{}]}, timeout=10).status_code == 503
    finally:
        log = stop_server(proc)
    assert "not ready" in log and "manifest.json: seal" in log and "does not match" in log


def test_cuda_request_falls_back_to_a_working_provider(packaged: Path, caplog: pytest.LogCaptureFixture):
    from tabrepro.serving.runtime import ServingModel

    with caplog.at_level("INFO", logger="tabrepro.serving.runtime"):
        model = ServingModel(packaged / "models/serving", providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    # the provider list alone would claim CUDA; the session says what actually runs, and the log says it too
    assert model.provider in model.session.get_providers()
    assert f"on {model.provider}" in caplog.text
    if model.provider != "CUDAExecutionProvider":
        assert "CUDAExecutionProvider is not usable here; running on CPUExecutionProvider" in caplog.text
