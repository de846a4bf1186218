"""The rollback procedure, performed: two bentos built from two parameter sets, imported from their exported
files into a fresh BentoML store (as on a serving host), served by tag one after the other, A -> B -> A. Each
switch changes every answer to exactly that bento's model (its `evaluate` probabilities, its sha256)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from tabrepro.config.params import load_params
from tests.conftest import REPO, package_sample
from tests.support.local_serve import start_server, stop_server

pytestmark = pytest.mark.e2e

LOGREG = {"name": "logreg", "params": {"C": 0.05, "max_iter": 500}, "search_space": {}}


def _build(work: Path, model: dict | None) -> dict:
    """Package a 1,500-row sample with a bento; return its tag, exported file, sha256 and evaluated answers."""
    (work / "bentos").mkdir(parents=True)
    shutil.copy(REPO / "bentos" / "bentofile.yaml", work / "bentos" / "bentofile.yaml")
    package_sample(work, load_params(REPO / "params.yaml"), model=model, build_bento=True)
    report = json.loads((work / "reports" / "package.json").read_text())
    evaluated = pd.read_parquet(work / "reports" / "predictions_test.parquet").set_index("customerID")
    return {
        "tag": report["bento"]["tag"],
        "file": work / "bentos" / "tabrepro.bento",
        "sha256": report["model"]["sha256"],
        "probability": evaluated["probability"],
    }


def _bentoml(home: Path, *args: str) -> str:
    env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "True"}
    proc = subprocess.run(
        [sys.executable, "-m", "bentoml", *args], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, f"bentoml {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _answers(tag: str, home: Path, records: list[dict]) -> tuple[str, pd.Series]:
    """Serve the bento ``tag`` from ``home``, score ``records``, stop it: (model_sha256, probability by id)."""
    proc, url = start_server(bento=tag, bentoml_home=home)
    try:
        assert httpx.get(f"{url}/readyz", timeout=5).status_code == 200
        body = httpx.post(f"{url}/predict", json={"records": records}, timeout=30).json()
    finally:
        stop_server(proc)
    served = pd.DataFrame(body["predictions"]).set_index("id")["probability"]
    return body["model_sha256"], served


def test_switching_bentos_by_tag_rolls_the_answers_back_and_forth(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "build-home"))  # builds stay out of the repository's store
    a = _build(tmp_path / "a", None)  # the default model (xgboost)
    b = _build(tmp_path / "b", LOGREG)
    assert a["tag"] != b["tag"] and a["sha256"] != b["sha256"]

    home = tmp_path / "serving-host"  # the host keeps every bento it was given; a rollback is serving another tag
    for built in (a, b):
        _bentoml(home, "import", str(built["file"]))
    listed = _bentoml(home, "list", "tabrepro")
    assert a["tag"] in listed and b["tag"] in listed

    raw = pd.read_csv(tmp_path / "a" / "raw" / "telco.csv", dtype="str", keep_default_na=False)
    ids = a["probability"].index  # the same sample and split seed: the same test split in a and b
    records = raw.set_index("customerID").loc[ids].drop(columns="Churn").reset_index().to_dict(orient="records")
    assert np.abs(a["probability"] - b["probability"].loc[ids]).max() > 0.01  # a switch is visible

    for current in (a, b, a):
        sha256, served = _answers(current["tag"], home, records)
        assert sha256 == current["sha256"]
        np.testing.assert_allclose(served.loc[ids], current["probability"].loc[ids], rtol=0, atol=1e-6)
