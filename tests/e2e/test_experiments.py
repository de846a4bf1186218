"""`dvc exp run` with Hydra overrides: model families, split seeds, and a new data set that is only a YAML file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.e2e.conftest import dvc, git

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


def test_model_variants_as_experiments(reproduced: Path):
    baseline = json.loads((reproduced / "reports/metrics.json").read_text())
    for model in ("logreg", "random_forest"):
        dvc(reproduced, "exp", "run", "-S", f"model={model}", "-n", f"try-{model}")
        metrics = json.loads((reproduced / "reports/metrics.json").read_text())
        assert metrics["model"] == model
        assert 0.8 < metrics["roc_auc"] < 0.87
    names = {e["name"] for e in _experiments(_exp_show(reproduced))}
    assert {"try-logreg", "try-random_forest"} <= names
    diff = json.loads(dvc(reproduced, "metrics", "diff", "--json").stdout)
    roc = diff["reports/metrics.json"]["roc_auc"]
    assert roc["old"] == pytest.approx(baseline["roc_auc"])
    assert roc["new"] == pytest.approx(metrics["roc_auc"])
    out = reproduced / "plots_html"
    dvc(reproduced, "plots", "show", "-o", str(out))
    assert (out / "index.html").stat().st_size > 1000


def test_split_seed_override_changes_the_split(reproduced: Path):
    before = pd.read_parquet(reproduced / "data/prepared/test.parquet")["customerID"]
    dvc(reproduced, "exp", "run", "-S", "split.seed=7")
    after = pd.read_parquet(reproduced / "data/prepared/test.parquet")["customerID"]
    assert len(before) == len(after)
    assert set(before) != set(after)


def test_a_new_data_set_is_a_new_yaml_file(reproduced: Path):
    (reproduced / "conf/data/toy_subscriptions.yaml").write_text(TOY_CONTRACT)
    _toy_table().to_csv(reproduced / "data/raw/toy_subscriptions.csv", index=False)
    git(reproduced, "add", "conf/data/toy_subscriptions.yaml", "data/raw/toy_subscriptions.csv")
    git(reproduced, "commit", "-qm", "add a made-up data set: data and contract only")
    # The promotion gate is project policy tuned to Telco; a toy table of 90 test rows gets its own bar.
    gate = ["evaluate.gate.min_roc_auc=0.65", "evaluate.gate.min_gain_over_baseline=null", "evaluate.gate.max_ece=null"]
    dvc(reproduced, "exp", "run", "-S", "data=toy_subscriptions", *(a for g in gate for a in ("-S", g)))
    quality = json.loads((reproduced / "reports/data_quality.json").read_text())
    assert quality["contract"] == "toy_subscriptions"
    assert quality["rows"]["in"] == 600
    assert quality["missing_values"]["monthly_fee"] > 0
    metrics = json.loads((reproduced / "reports/metrics.json").read_text())
    assert metrics["roc_auc"] > 0.65  # the made-up target depends on the features
    features = pd.read_parquet(reproduced / "data/features/train.parquet").columns
    assert "cat__plan_premium" in features
    assert "bool__autopay" in features
