"""Shadow and canary rollouts over a real `bentoml serve` on 127.0.0.1, with two models packaged from the same
sample (the default xgboost as primary, a logistic regression as candidate), the prediction log they write, the
per-model metrics, and every bad rollout setting refused before the service says it is ready."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from tabrepro.artefacts import ServingManifest
from tabrepro.serving.rollout import to_candidate
from tests.conftest import SamplePipelines
from tests.support.local_serve import start_server, stop_server

LOGREG = {"name": "logreg", "params": {"C": 0.05, "max_iter": 500}, "search_space": {}}


@pytest.fixture(scope="module")
def candidate(sample_pipelines: SamplePipelines) -> Path:
    """The same 1,500 rows and split as ``packaged`` (the primary), another model."""
    return sample_pipelines(model=LOGREG)  # shared: read only


def _serve(packaged: Path, tmp_path: Path, **env: str) -> tuple:
    return start_server(packaged / "models" / "serving", bentoml_home=tmp_path / "home", env=env)


def _records(work: Path) -> list[dict]:
    raw = pd.read_csv(work / "raw" / "telco.csv", dtype="str", keep_default_na=False)
    test_ids = pd.read_parquet(work / "reports" / "predictions_test.parquet")["customerID"]
    return raw.set_index("customerID").loc[test_ids].drop(columns="Churn").reset_index().to_dict(orient="records")


def _evaluated(work: Path) -> pd.Series:
    return pd.read_parquet(work / "reports" / "predictions_test.parquet").set_index("customerID")["probability"]


def _manifest(work: Path) -> dict:
    return json.loads((work / "models" / "serving" / "manifest.json").read_text())


def _post_all(url: str, records: list[dict], batch: int) -> list[dict]:
    """Every record in requests of ``batch``; each answer carries its request's id."""
    answers = []
    for start in range(0, len(records), batch):
        response = httpx.post(f"{url}/predict", json={"records": records[start : start + batch]}, timeout=30)
        assert response.status_code == 200, response.text
        body = response.json()
        answers += [
            {**p, "request_id": body["request_id"], "top_sha": body["model_sha256"]} for p in body["predictions"]
        ]
    return answers


def _metric(text: str, name: str, **labels: str) -> float:
    """The value of one Prometheus sample, whatever the order of its labels."""
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name}{labels} in /metrics")


def test_shadow_returns_the_primary_and_logs_both(packaged: Path, candidate: Path, tmp_path: Path):
    log_path = tmp_path / "log" / "predictions.jsonl"
    proc, url = _serve(
        packaged,
        tmp_path,
        TABREPRO_ROLLOUT_MODE="shadow",
        TABREPRO_CANDIDATE_DIR=str(candidate / "models" / "serving"),
        TABREPRO_PREDICTION_LOG=str(log_path),
    )
    try:
        assert httpx.get(f"{url}/readyz", timeout=5).status_code == 200
        records = _records(packaged)
        answers = pd.DataFrame(_post_all(url, records, 100)).set_index("id")
    finally:
        server_log = stop_server(proc)
    assert "Completed cleanup hook: close_prediction_log" in server_log  # flushed and closed on shutdown
    primary, shadow = _manifest(packaged), _manifest(candidate)
    evaluated = _evaluated(packaged)
    np.testing.assert_allclose(answers.loc[evaluated.index, "probability"], evaluated, rtol=0, atol=1e-6)
    assert set(answers["role"]) == {"primary"} and set(answers["model_version"]) == {primary["version"]}
    assert set(answers["top_sha"]) == {primary["onnx_sha256"]}

    lines = pd.DataFrame([json.loads(line) for line in log_path.read_text().splitlines()])
    assert len(lines) == 2 * len(records)
    roles = lines.groupby("id")["role"].apply(sorted)
    assert len(roles) == len(records) and all(r == ["candidate", "primary"] for r in roles)  # both, once each
    by_role = {role: group.set_index("id") for role, group in lines.groupby("role")}
    assert by_role["primary"]["served"].all() and not by_role["candidate"]["served"].any()
    assert set(by_role["candidate"]["model_sha256"]) == {shadow["onnx_sha256"]}
    np.testing.assert_allclose(
        by_role["candidate"].loc[evaluated.index, "probability"], _evaluated(candidate), atol=1e-6
    )
    np.testing.assert_allclose(by_role["primary"].loc[evaluated.index, "probability"], evaluated, atol=1e-6)
    assert set(lines["request_id"]) == set(answers["request_id"])
    first = by_role["primary"].loc[records[0]["customerID"]]
    assert first["inputs"]["customerID"] == records[0]["customerID"]
    assert first["inputs"]["TotalCharges"] is None or isinstance(first["inputs"]["TotalCharges"], float)
    assert first["inputs"]["Contract"] == records[0]["Contract"]


def test_canary_is_sticky_per_id_and_answers_with_the_candidate(packaged: Path, candidate: Path, tmp_path: Path):
    proc, url = _serve(
        packaged,
        tmp_path,
        TABREPRO_ROLLOUT_MODE="canary",
        TABREPRO_CANDIDATE_DIR=str(candidate / "models" / "serving"),
        TABREPRO_CANARY_PERCENT="30",
    )
    try:
        assert httpx.get(f"{url}/readyz", timeout=5).status_code == 200
        records = _records(packaged)
        first = pd.DataFrame(_post_all(url, records, 50)).set_index("id")
        again = pd.DataFrame(_post_all(url, records[::-1], 7)).set_index("id")  # other batches, other order
        anonymous = {k: v for k, v in records[0].items() if k != "customerID"}
        no_id = httpx.post(f"{url}/predict", json={"records": [anonymous] * 3}, timeout=10).json()["predictions"]
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
    finally:
        stop_server(proc)
    primary, canary = _manifest(packaged), _manifest(candidate)
    assert (again.loc[first.index, "model_version"] == first["model_version"]).all()  # sticky
    expected = pd.Series({r["customerID"]: to_candidate(r["customerID"], 30) for r in records})
    assert ((first["role"] == "candidate") == expected.loc[first.index]).all()
    assert 0.2 <= expected.mean() <= 0.4, expected.mean()
    assert set(first.loc[first["role"] == "candidate", "model_version"]) == {canary["version"]}
    assert set(first.loc[first["role"] == "primary", "model_version"]) == {primary["version"]}
    assert set(first["top_sha"]) == {primary["onnx_sha256"]}  # the top level stays the primary's
    served = pd.Series(
        np.where(
            first["role"] == "candidate", _evaluated(candidate).loc[first.index], _evaluated(packaged).loc[first.index]
        ),
        index=first.index,
    )
    np.testing.assert_allclose(first["probability"], served, rtol=0, atol=1e-6)
    assert [p["role"] for p in no_id] == ["primary"] * 3
    n_candidate = int(expected.sum())
    assert _metric(metrics, "tabrepro_model_records_total", role="candidate", model_version=canary["version"]) == (
        2 * n_candidate
    )
    assert _metric(metrics, "tabrepro_model_records_total", role="primary", model_version=primary["version"]) == (
        2 * (len(records) - n_candidate) + 3
    )
    assert _metric(metrics, "tabrepro_model_latency_seconds_count", role="candidate") > 0
    assert _metric(metrics, "tabrepro_model_score_count", role="candidate") == 2 * n_candidate
    # every served answer, and only those, lands in the unlabelled histogram of served probabilities
    served_count = next(
        float(line.split()[1])
        for line in metrics.splitlines()
        if line.startswith("tabrepro_predicted_probability_count ")
    )
    assert served_count == 2 * len(records) + 3


def _altered_contract(candidate: Path, tmp_path: Path) -> Path:
    """The candidate's serving folder with one more payment method in its contract (model.onnx untouched, so its
    sha256 still matches the manifest), sealed again as ``package`` would seal it (an unsealed edit is refused
    before the contracts are compared)."""
    changed = tmp_path / "changed"
    shutil.copytree(candidate / "models" / "serving", changed)
    manifest = json.loads((changed / "manifest.json").read_text())
    manifest["contract"]["features"]["PaymentMethod"]["values"].append("Crypto")
    fields = {k: v for k, v in manifest.items() if k not in ("schema_version", "seal")}
    (changed / "manifest.json").write_text(json.dumps(ServingManifest.sealed(**fields).model_dump(mode="json")))
    return changed


def test_bad_rollout_settings_keep_the_service_unready_over_http(packaged: Path, candidate: Path, tmp_path: Path):
    cases = [
        ({"TABREPRO_ROLLOUT_MODE": "canary", "TABREPRO_CANARY_PERCENT": "150"}, "TABREPRO_CANARY_PERCENT"),
        (
            {"TABREPRO_ROLLOUT_MODE": "shadow", "TABREPRO_CANDIDATE_DIR": str(_altered_contract(candidate, tmp_path))},
            "contract.features.PaymentMethod.values",
        ),
    ]
    for env, named in cases:
        proc, url = _serve(packaged, tmp_path, **env)
        try:
            ready = httpx.get(f"{url}/readyz", timeout=5)
            predict = httpx.post(f"{url}/predict", json={"records": _records(packaged)[:1]}, timeout=10)
        finally:
            log = stop_server(proc)
        assert ready.status_code == 503 and named in ready.text, ready.text
        assert predict.status_code == 503  # BentoML hides a 5xx's message; /readyz and the log say why
        assert "not ready" in log and named in log


@pytest.fixture
def service_env(monkeypatch: pytest.MonkeyPatch, packaged: Path) -> pytest.MonkeyPatch:
    for name in (
        "TABREPRO_ROLLOUT_MODE",
        "TABREPRO_CANDIDATE_DIR",
        "TABREPRO_CANARY_PERCENT",
        "TABREPRO_PREDICTION_LOG",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TABREPRO_SERVING_DIR", str(packaged / "models" / "serving"))
    return monkeypatch


def _altered_model(candidate: Path, tmp_path: Path) -> Path:
    altered = tmp_path / "altered"
    shutil.copytree(candidate / "models" / "serving", altered)
    with (altered / "model.onnx").open("ab") as fh:
        fh.write(b"\0")
    return altered


@pytest.mark.parametrize(
    ("case", "named"),
    [
        (
            "no candidate",
            "'shadow' but there is no candidate: set serve.rollout.candidate_dir or TABREPRO_CANDIDATE_DIR",
        ),
        ("missing candidate", "rollout candidate"),
        ("altered candidate", "does not match"),
        ("bad mode", "TABREPRO_ROLLOUT_MODE: expected one of off, shadow, canary, got 'blue'"),
        ("unwritable log", "prediction log"),
    ],
    ids=["no candidate", "missing candidate", "altered candidate", "bad mode", "unwritable log"],
)
def test_every_bad_setting_is_refused_in_process(service_env, candidate: Path, tmp_path: Path, case: str, named: str):
    from starlette.exceptions import HTTPException

    from tabrepro.serving.service import TabreproService

    (tmp_path / "a-file").write_text("")
    env = {
        "no candidate": lambda: {"TABREPRO_ROLLOUT_MODE": "shadow"},
        "missing candidate": lambda: {"TABREPRO_ROLLOUT_MODE": "shadow", "TABREPRO_CANDIDATE_DIR": str(tmp_path / "x")},
        "altered candidate": lambda: {
            "TABREPRO_ROLLOUT_MODE": "canary",
            "TABREPRO_CANDIDATE_DIR": str(_altered_model(candidate, tmp_path)),
        },
        "bad mode": lambda: {"TABREPRO_ROLLOUT_MODE": "blue"},
        "unwritable log": lambda: {"TABREPRO_PREDICTION_LOG": str(tmp_path / "a-file" / "predictions.jsonl")},
    }[case]()
    for name, value in env.items():
        service_env.setenv(name, value)
    service = TabreproService.inner()
    assert named in service.problem
    with pytest.raises(HTTPException) as refused:
        service.__is_ready__()
    assert refused.value.status_code == 503 and named in refused.value.detail


def test_a_failing_shadow_never_costs_the_caller_its_answer(service_env, packaged: Path, candidate: Path, tmp_path):
    from prometheus_client import REGISTRY

    from tabrepro.serving.service import TabreproService

    service_env.setenv("TABREPRO_ROLLOUT_MODE", "shadow")
    service_env.setenv("TABREPRO_CANDIDATE_DIR", str(candidate / "models" / "serving"))
    service_env.setenv("TABREPRO_PREDICTION_LOG", str(tmp_path / "p.jsonl"))
    service = TabreproService.inner()
    assert service.problem == ""

    def broken(records):
        raise RuntimeError("the candidate's session died")

    service_env.setattr(service.candidate, "predict_proba", broken)
    labels = {"role": "candidate", "model_version": service.candidate.version}
    before = REGISTRY.get_sample_value("tabrepro_model_errors_total", labels) or 0
    records = _records(packaged)[:5]
    body = service.predict(records)
    service.close_prediction_log()
    assert [p["role"] for p in body["predictions"]] == ["primary"] * 5
    np.testing.assert_allclose(
        [p["probability"] for p in body["predictions"]],
        _evaluated(packaged).loc[[r["customerID"] for r in records]],
        atol=1e-6,
    )
    assert REGISTRY.get_sample_value("tabrepro_model_errors_total", labels) == before + 1
    logged = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [x["role"] for x in logged] == ["primary"] * 5  # nothing is invented for the candidate
