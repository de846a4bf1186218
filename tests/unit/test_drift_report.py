"""``DriftReport``: the drift report as a typed model that writes the very bytes of the report file as it was
laid out when it was a dict (every key, in order; keys some entries lack are left out, not written as null)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from tabrepro.config.params import DriftParams
from tabrepro.contract.spec import DataContract
from tabrepro.contract.table import parse_table
from tabrepro.monitoring.drift import DriftAccumulator, compute_reference_stats, compute_score_reference
from tabrepro.monitoring.report import BinDistribution, DriftReport, LevelDistribution, ScoreDrift, ScoreNote

MODEL = {"version": "tiny-xgboost-0123456789ab", "onnx_sha256": "0123456789ab" * 5 + "cdef"}
TABLE = {"current": "new.csv", "kind": "csv", "files": ["new.csv"], "scored": 0, "refused": 3, "refused_by": {"x": 3}}
LOG = {"current": "logs", "kind": "log", "files": ["logs/p.jsonl"], "role": "primary", "scored": 0}


def _raw(n: int, *, seed: int, plan_pro: float, gold: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    spend = np.round(rng.gamma(2.0, 20.0, size=n), 2).astype(str)
    spend[rng.random(n) < 0.1] = " "
    raw = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "age": rng.integers(18, 90, size=n).astype(str),
            "spend": spend,
            "plan": np.where(rng.random(n) < plan_pro, "pro", "basic"),
            "active": np.where(rng.random(n) < 0.7, "Yes", "No"),
            "y": np.where(rng.random(n) < 0.3, "yes", "no"),
        }
    )
    if gold:
        raw.loc[raw.index[::50], "plan"] = "gold"  # a level the contract does not know
    return raw


def _report_as_dict(contract: DataContract, inputs: dict, *, scored: int) -> dict:
    """The report as ``finish_drift`` laid it out as a dict before the model: the layout the file keeps."""
    parsed, _ = parse_table(_raw(2_000, seed=1, plan_pro=0.4), contract)
    reference = compute_reference_stats(parsed, contract, bins=10)
    scores = compute_score_reference(np.random.default_rng(2).beta(2, 5, size=500))
    accumulator = DriftAccumulator(reference, scores, contract)
    parsed, problems = parse_table(_raw(600, seed=3, plan_pro=0.7, gold=True), contract)
    accumulator.update(parsed, np.random.default_rng(4).beta(3, 4, size=scored), problems=problems)
    params = DriftParams()
    result = accumulator.report(params)
    extra = {"rows": result["rows"], "reference": "models/reference_stats.json", "reference_rows": 2_000}
    head = {"inputs": {**inputs, **extra, "contract": contract.name, "model": MODEL}, "thresholds": params.model_dump()}
    return head | {k: result[k] for k in ("decision", "score", "unknown_share", "features")}


@pytest.mark.parametrize(("inputs", "scored", "score_kind"), [(TABLE, 597, ScoreDrift), (LOG, 20, ScoreNote)])
def test_the_model_writes_the_bytes_of_the_dict_it_replaces(
    tiny_contract: DataContract, inputs: dict, scored: int, score_kind: type
) -> None:
    as_dict = _report_as_dict(tiny_contract, inputs, scored=scored)
    report = DriftReport.model_validate(as_dict)
    assert json.dumps(report.to_json(), indent=2) == json.dumps(as_dict, indent=2)
    assert isinstance(report.score, score_kind)
    assert isinstance(report.features["spend"].distribution, BinDistribution)
    assert isinstance(report.features["plan"].distribution, LevelDistribution)
    assert report.features["plan"].unknown_values == {"gold": 12}
    assert "mean" not in report.to_json()["features"]["plan"] and "figures" not in report.to_json()
    drawn = report.model_copy(update={"figures": ["figures/plan.png"]})
    assert list(drawn.to_json())[-1] == "figures" and drawn.to_json()["figures"] == ["figures/plan.png"]
    assert DriftReport.model_validate_json(json.dumps(drawn.to_json())) == drawn


def test_an_unknown_or_missing_key_is_refused_and_the_report_is_frozen(tiny_contract: DataContract) -> None:
    as_dict = _report_as_dict(tiny_contract, TABLE, scored=597)
    with pytest.raises(ValidationError, match="inputs.colour"):
        DriftReport.model_validate({**as_dict, "inputs": {**as_dict["inputs"], "colour": "red"}})
    with pytest.raises(ValidationError, match="decision.retrain"):
        DriftReport.model_validate({**as_dict, "decision": {"reasons": []}})
    report = DriftReport.model_validate(as_dict)
    with pytest.raises(ValidationError, match="frozen"):
        report.decision.retrain = False  # type: ignore[misc]
