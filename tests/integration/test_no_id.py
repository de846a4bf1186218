"""A data set without an id column, prepare -> package -> batch scoring -> the service over HTTP: every row is
keyed by its line in the source (``row``), every request record by its index."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from tabrepro.batch.scoring import score_file
from tabrepro.config.params import load_params
from tests.conftest import REPO, package_sample
from tests.support.local_serve import start_server, stop_server

ID, TARGET = "customerID", "Churn"


@pytest.fixture(scope="module")
def packaged_no_id(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default data set without its id column (the raw file has none, the contract declares none)."""
    params = load_params(REPO / "params.yaml")
    params["data"] = {k: v for k, v in params["data"].items() if k != "id_column"}
    return package_sample(tmp_path_factory.mktemp("no-id"), params, rows=1200, drop_columns=(ID,))


@pytest.fixture(scope="module")
def raw(packaged_no_id: Path) -> pd.DataFrame:
    """The raw sample as text, indexed by each row's line in the file (the header is line 1)."""
    frame = pd.read_csv(packaged_no_id / "raw" / "telco.csv", dtype="str", keep_default_na=False)
    return frame.set_axis(pd.RangeIndex(2, 2 + len(frame)))


@pytest.fixture(scope="module")
def evaluated(packaged_no_id: Path) -> pd.DataFrame:
    return pd.read_parquet(packaged_no_id / "reports" / "predictions_test.parquet")


def test_the_row_key_is_carried_from_the_raw_lines_to_the_predictions(packaged_no_id, raw, evaluated):
    assert ID not in raw.columns
    prepared = {s: pd.read_parquet(packaged_no_id / "data" / "prepared" / f"{s}.parquet") for s in ("train", "test")}
    features = pd.read_parquet(packaged_no_id / "data" / "features" / "test.parquet")
    assert prepared["test"].columns[0] == "row" and features.columns[0] == "row"
    assert prepared["test"]["row"].dtype == np.int64
    keys = pd.concat([prepared["train"]["row"], prepared["test"]["row"]])
    assert keys.is_unique and keys.between(2, len(raw) + 1).all()
    assert features["row"].tolist() == prepared["test"]["row"].tolist()
    assert evaluated.columns[0] == "row" and evaluated["row"].tolist() == features["row"].tolist()
    # each key is the line of the very row it stands for: its label and its tenure match the raw file's
    assert evaluated["target"].tolist() == (raw.loc[evaluated["row"], TARGET] == "Yes").astype(int).tolist()
    tenure = raw.loc[prepared["test"]["row"], "tenure"].astype(float).to_numpy()
    np.testing.assert_array_equal(prepared["test"]["tenure"].to_numpy(), tenure)
    manifest = json.loads((packaged_no_id / "models" / "serving" / "manifest.json").read_text())
    assert manifest["contract"]["id_column"] is None


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_batch_scoring_keys_each_row_by_its_line_or_row_as_the_rejects_do(
    packaged_no_id, raw, evaluated, tmp_path, fmt
):
    rows = raw.loc[evaluated["row"]].drop(columns=TARGET).reset_index(drop=True)
    bad = pd.DataFrame([{**rows.iloc[0].to_dict(), "tenure": "five"}])
    rows = pd.concat([rows.iloc[:3], bad, rows.iloc[3:]], ignore_index=True)  # the 4th data row is refused
    source = tmp_path / f"in.{fmt}"
    if fmt == "csv":
        rows.to_csv(source, index=False)
    else:
        rows.to_parquet(source, index=False)
    summary = score_file(
        source, tmp_path / "out.parquet", serving_dir=packaged_no_id / "models/serving", progress=False
    )
    out = pd.read_parquet(tmp_path / "out.parquet")
    rejects = pd.read_csv(tmp_path / "out.rejects.csv")
    first = 2 if fmt == "csv" else 1  # a CSV row is numbered by its line (the header is line 1), a Parquet row from 1
    label = "line" if fmt == "csv" else "row"
    assert summary.rows_scored == len(evaluated) and summary.rows_rejected == 1
    assert rejects[label].tolist() == [first + 3] and rejects["id"].isna().all()
    assert "tenure: expected a number, got 'five'" in rejects["reason"].iloc[0]
    expected_keys = [first + i for i in range(len(rows)) if i != 3]
    assert out.columns.tolist() == ["row", "probability", "label", "model_version"]
    assert out["row"].dtype == np.int64 and out["row"].tolist() == expected_keys
    np.testing.assert_allclose(out["probability"], evaluated["probability"], atol=1e-6, rtol=0)
    assert out["label"].tolist() == evaluated["label"].tolist()


@pytest.fixture(scope="module")
def server(packaged_no_id: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The no-id model served in canary mode (every id-less record must stay on the primary) with a log."""
    serving, home = packaged_no_id / "models" / "serving", tmp_path_factory.mktemp("no-id-serve")
    env = {
        "TABREPRO_ROLLOUT_MODE": "canary",
        "TABREPRO_CANDIDATE_DIR": str(serving),
        "TABREPRO_CANARY_PERCENT": "100",
        "TABREPRO_PREDICTION_LOG": str(home / "log" / "predictions.jsonl"),
    }
    proc, url = start_server(serving, bentoml_home=home / "bentoml", env=env)
    yield url, home / "log" / "predictions.jsonl"
    stop_server(proc)


def test_the_service_answers_records_without_an_id_by_their_index(server, raw, evaluated):
    url, log_path = server
    assert httpx.get(f"{url}/readyz", timeout=5).status_code == 200
    records = raw.loc[evaluated["row"]].drop(columns=TARGET).to_dict("records")[:40]
    response = httpx.post(f"{url}/predict", json={"records": records}, timeout=30)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [p["index"] for p in predictions] == list(range(len(records)))
    assert {p["id"] for p in predictions} == {None} and {p["role"] for p in predictions} == {"primary"}
    probabilities = [p["probability"] for p in predictions]
    np.testing.assert_allclose(probabilities, evaluated["probability"].iloc[:40], atol=1e-6, rtol=0)
    refused = httpx.post(f"{url}/predict", json={"records": [{**records[0], ID: "7590-VHVEG"}]}, timeout=10)
    assert refused.status_code == 400 and f"records[0].{ID}: unknown field" in refused.text
    lines = _log_lines(log_path, expected=len(records))
    assert [(x["id"], x["index"], x["role"]) for x in lines] == [(None, i, "primary") for i in range(len(records))]
    np.testing.assert_allclose([x["probability"] for x in lines], probabilities, atol=0, rtol=0)


def _log_lines(path: Path, *, expected: int) -> list[dict]:
    """The log's lines once the writer has flushed them (it lingers up to 50 ms; allow a few seconds)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (path.exists() and path.read_bytes().count(b"\n") >= expected):
        time.sleep(0.1)
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
