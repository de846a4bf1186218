"""A data set without an id column, end to end: `dvc exp run -S data=titanic`, `tabrepro score`, the service over HTTP.

The Titanic table (``conf/contracts/titanic.yaml``, drafted by `tabrepro contract draft`) has no key: every artefact is
keyed by the row's line in the raw file (``row``). Its contract is the only thing that changes; the copy's tuning
budget is the small one of the other e2e tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml

from tests.e2e.conftest import TIMEOUT_S, copy_repository, dvc, env
from tests.support.local_serve import start_server, stop_server

pytestmark = pytest.mark.e2e

RAW = "data/raw/titanic_survival.csv"


def test_a_table_without_an_id_runs_through_the_pipeline_scoring_and_the_service(tmp_path: Path) -> None:
    repo = copy_repository(tmp_path / "repo")
    dvc(repo, "exp", "run", "-S", "data=titanic")
    params = yaml.safe_load((repo / "params.yaml").read_text(encoding="utf-8"))
    assert params["data"]["name"] == "titanic"
    assert "id_column" not in params["data"] or params["data"]["id_column"] is None
    metrics = json.loads((repo / "reports" / "metrics.json").read_text(encoding="utf-8"))
    assert 0.6 < metrics["roc_auc"] < 0.99, metrics["roc_auc"]

    done = subprocess.run(
        [sys.executable, "-m", "tabrepro.cli", "score", "--input", RAW, "--output", "scores.csv", "--no-progress"],
        cwd=repo, env=env(), capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    scores = pd.read_csv(repo / "scores.csv")
    assert list(scores.columns[:3]) == ["row", "probability", "label"]
    assert scores["row"].tolist() == list(range(2, 1311))  # each row by its line in the file (the header is 1)
    assert scores["probability"].between(0, 1).all()

    raw = pd.read_csv(repo / RAW, dtype="str", keep_default_na=False)
    records = raw.drop(columns=["name", "survived"]).head(20).to_dict(orient="records")  # "" ages included
    proc, url = start_server(repo / "models" / "serving", bentoml_home=tmp_path / "bentoml")
    try:
        response = httpx.post(f"{url}/predict", json={"records": records}, timeout=30)
        assert response.status_code == 200, response.text
        served = [p["probability"] for p in response.json()["predictions"]]
        assert all(abs(a - b) < 1e-6 for a, b in zip(served, scores["probability"].head(20), strict=True))
        bad = httpx.post(f"{url}/predict", json={"records": [{**records[0], "age": "old"}]}, timeout=10)
        assert bad.status_code == 400
        assert "records[0].age" in bad.text
    finally:
        stop_server(proc)
