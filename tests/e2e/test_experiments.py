"""`dvc exp run` with Hydra overrides: a model family and a split seed, and a new data set that is only a YAML file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.e2e.conftest import copy_reproduced, dvc, git

pytestmark = pytest.mark.e2e

TOY_CONTRACT = """\
name: toy_subscriptions
description: a made-up subscription table, to prove a new data set needs no code
source: data/raw/toy_subscriptions.csv
format: csv
id_column: account
missing_values: ["", "NA"]
target: {column: left, positive: "yes", negative: "no"}
features:
  age: {type: numeric, integer: true, min: 18, max: 100}
  monthly_fee: {type: numeric, min: 0, max: 500, nullable: true}
  plan: {type: categorical, values: ["basic", "plus", "premium"]}
  autopay: {type: boolean, true_values: ["Y"], false_values: ["N"]}
"""
# conf/data/<name>.yaml: what `-S data=<name>` picks (the params), naming the contract (`tabrepro contract draft`
# writes both)
TOY_REFERENCE = """\
name: toy_subscriptions
task: binary
source: data/raw/toy_subscriptions.csv
contract: conf/contracts/toy_subscriptions.yaml
"""


def _toy_table(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n)
    fee = rng.uniform(5, 120, n).round(2)
    plan = rng.choice(["basic", "plus", "premium"], n)
    autopay = rng.choice(["Y", "N"], n)
    logit = 0.04 * (fee - 60) - 0.03 * (age - 45) + 1.2 * (autopay == "N") - 0.8 * (plan == "premium")
    left = np.where(rng.uniform(size=n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    fee_text = np.where(rng.uniform(size=n) < 0.03, "NA", fee.astype(str))
    return pd.DataFrame(
        {
            "account": [f"A{i:05d}" for i in range(n)],
            "age": age,
            "monthly_fee": fee_text,
            "plan": plan,
            "autopay": autopay,
            "left": left,
        }
    )


def _exp_show(repo: Path) -> list[dict]:
    return json.loads(dvc(repo, "exp", "show", "--json").stdout)


def _experiments(shown: list[dict]) -> list[dict]:
    return [e for rev in shown for e in (rev.get("experiments") or [])]


@dataclass(frozen=True)
class Experiment:
    """A copy of the reproduced repository before and after one `dvc exp run` with two Hydra overrides."""

    repo: Path
    baseline: dict  # reports/metrics.json before
    test_ids: pd.Series  # the test split's ids before


@pytest.fixture(scope="module")
def experiment(reproduced: Path, tmp_path_factory: pytest.TempPathFactory) -> Experiment:
    """One experiment changes a config group (the model family) and a value (the split seed) at once: one pipeline
    run checks both kinds of override. Each family's quality on the full data is bench/quality.py's."""
    repo = copy_reproduced(reproduced, tmp_path_factory.mktemp("experiment") / "repo")
    baseline = json.loads((repo / "reports/metrics.json").read_text())
    test_ids = pd.read_parquet(repo / "data/prepared/test.parquet")["customerID"]
    dvc(repo, "exp", "run", "-S", "model=logreg", "-S", "split.seed=7", "-n", "try-logreg")
    return Experiment(repo, baseline, test_ids)


def test_model_variant_as_an_experiment(experiment: Experiment):
    repo = experiment.repo
    metrics = json.loads((repo / "reports/metrics.json").read_text())
    assert metrics["model"] == "logreg"
    assert json.loads((repo / "models/model/meta.json").read_text())["family"] == "logreg"
    assert 0 < metrics["roc_auc"] <= 1 and metrics["gate"]["verdict"] == "pass"
    assert "try-logreg" in {e["name"] for e in _experiments(_exp_show(repo))}
    diff = json.loads(dvc(repo, "metrics", "diff", "--json").stdout)
    roc = diff["reports/metrics.json"]["roc_auc"]
    assert roc["old"] == pytest.approx(experiment.baseline["roc_auc"])
    assert roc["new"] == pytest.approx(metrics["roc_auc"])
    out = repo / "plots_html"
    dvc(repo, "plots", "show", "-o", str(out))
    assert (out / "index.html").stat().st_size > 1000


def test_split_seed_override_changes_the_split(experiment: Experiment):
    after = pd.read_parquet(experiment.repo / "data/prepared/test.parquet")["customerID"]
    assert len(experiment.test_ids) == len(after)
    assert set(experiment.test_ids) != set(after)


def test_a_new_data_set_is_two_yaml_files(workspace: Path):
    (workspace / "conf/contracts/toy_subscriptions.yaml").write_text(TOY_CONTRACT)
    (workspace / "conf/data/toy_subscriptions.yaml").write_text(TOY_REFERENCE)
    _toy_table().to_csv(workspace / "data/raw/toy_subscriptions.csv", index=False)
    git(workspace, "add", "conf", "data/raw/toy_subscriptions.csv")
    git(workspace, "commit", "-qm", "add a made-up data set: data and contract only")
    # The promotion gate is the data set's policy; the toy contract sets none, so the relative defaults judge it
    # (no significant loss to the logistic baseline, a win over the majority class, the leakage alarm): no overrides.
    dvc(workspace, "exp", "run", "-S", "data=toy_subscriptions")
    quality = json.loads((workspace / "reports/data_quality.json").read_text())
    assert quality["contract"] == "toy_subscriptions"
    assert quality["rows"]["in"] == 600
    assert quality["missing_values"]["monthly_fee"] > 0
    metrics = json.loads((workspace / "reports/metrics.json").read_text())
    assert metrics["roc_auc"] > 0.65  # the made-up target depends on the features
    features = pd.read_parquet(workspace / "data/features/train.parquet").columns
    assert "cat__plan_premium" in features
    assert "bool__autopay" in features
