"""The tune stage under DVC: its place in the graph, what a budget change re-runs, and the experiment queue."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import SAMPLE_GATE, TUNE_TRIALS, dvc

pytestmark = pytest.mark.e2e


def _ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '(\w+)'", output))


def test_dag_puts_tune_between_featurize_and_train(reproduced: Path):
    dot = dvc(reproduced, "dag", "--dot").stdout
    edges = set(re.findall(r'"?(\w+)"?\s*->\s*"?(\w+)"?', dot))
    chain = ["prepare", "featurize", "tune", "train", "evaluate", "package"]
    assert set(itertools.pairwise(chain)) <= edges
    assert {a for a, b in edges if b == "tune"} == {"featurize"}  # tune reads the train features and nothing else
    assert not any(a in ("evaluate", "package") and b in chain[:4] for a, b in edges)


# On the sample, CV ROC-AUC within the gate's floor and its leakage alarm; the full-data band (0.8, 0.87) is
# bench/quality.py's.
PLAUSIBLE_ROC_AUC = (SAMPLE_GATE["min_roc_auc"], 0.9)


def test_tune_outputs(reproduced: Path):
    metrics = json.loads((reproduced / "reports/tune/metrics.json").read_text())
    assert metrics["n_trials_requested"] == TUNE_TRIALS == 5
    assert metrics["n_trials_complete"] + metrics["n_trials_pruned"] == 5
    assert PLAUSIBLE_ROC_AUC[0] < metrics["best_cv_roc_auc"] < PLAUSIBLE_ROC_AUC[1]
    best = json.loads((reproduced / "models/best_params.json").read_text())
    assert best["source"] == "search"
    meta = json.loads((reproduced / "models/model/meta.json").read_text())
    assert meta["family"] == best["model"]


def test_changing_the_budget_reruns_from_tune_on_only(workspace: Path):
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    params["tune"]["n_trials"] = 7
    (workspace / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert _ran(dvc(workspace, "repro").stdout) == {"tune", "train", "evaluate", "package"}
    assert json.loads((workspace / "reports/tune/metrics.json").read_text())["n_trials_requested"] == 7


def test_zero_trials_trains_with_the_configured_params(workspace: Path):
    dvc(workspace, "exp", "run", "-S", "tune.n_trials=0")
    best = json.loads((workspace / "models/best_params.json").read_text())
    model = yaml.safe_load((workspace / "params.yaml").read_text())["model"]
    chosen = model["candidates"][best["model"]] if model["name"] == "auto" else model  # auto: the family it chose
    assert best["source"] == "config"
    assert best["params"] == chosen["params"]


def test_queued_experiments_run_all(workspace: Path):
    dvc(workspace, "exp", "run", "--queue", "-S", "model=xgboost,logreg")
    dvc(workspace, "exp", "run", "--run-all", "-j", "1", timeout=900)
    status = dvc(workspace, "queue", "status").stdout
    assert status.count("Success") == 2, status
    shown = json.loads(dvc(workspace, "exp", "show", "--json").stdout)
    evaluated = {}
    for rev in shown:
        for exp in rev.get("experiments") or []:
            for executed in exp.get("revs") or []:
                data = executed.get("data") or {}
                params = data["params"]["params.yaml"]["data"]
                metrics = (data.get("metrics") or {}).get("reports/metrics.json", {}).get("data", {})
                if "roc_auc" in metrics:
                    evaluated[params["model"]["name"]] = metrics["roc_auc"]
    assert {"xgboost", "logreg"} <= set(evaluated)
    assert all(PLAUSIBLE_ROC_AUC[0] < v < PLAUSIBLE_ROC_AUC[1] for v in evaluated.values()), evaluated
