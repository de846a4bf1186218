"""Drift statistics on small synthetic arrays, and the accumulator that feeds them chunk by chunk."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tabrepro.config.params import DriftParams
from tabrepro.contract.spec import DataContract
from tabrepro.contract.table import parse_table
from tabrepro.errors import ConfigError, DataError, parse_section
from tabrepro.monitoring.decision import decide_retrain
from tabrepro.monitoring.drift import DriftAccumulator, compute_reference_stats, compute_score_reference
from tabrepro.monitoring.stats import (
    Reservoir,
    bin_counts,
    chi2_against_shares,
    ks_against_sketch,
    psi,
    psi_band,
    sketch_cdf,
)

RNG_SEED = 7


def _reference(values: np.ndarray) -> dict:
    """A numeric reference (edges, fractions, quantile sketch) in the layout the pipeline writes."""
    return compute_score_reference(values, bins=10)


def test_psi_of_identical_distributions_is_zero():
    shares = np.array([0.1, 0.2, 0.3, 0.4])
    assert psi(shares * 1000, shares) == pytest.approx(0.0, abs=1e-12)
    rng = np.random.default_rng(RNG_SEED)
    ref = _reference(rng.normal(size=50_000))
    same = rng.normal(size=50_000)
    assert psi(bin_counts(same, np.array(ref["edges"])), np.array(ref["fractions"])) < 0.005


def test_psi_floors_empty_bins_and_refuses_mismatched_bins():
    value = psi(np.array([0, 100]), np.array([0.5, 0.5]))
    assert np.isfinite(value) and value > 2  # an empty bin is a large, finite contribution
    with pytest.raises(ValueError, match="3 current bins against 2"):
        psi(np.array([1, 2, 3]), np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="empty"):
        psi(np.array([0, 0]), np.array([0.5, 0.5]))


@pytest.mark.parametrize(
    ("value", "band"),
    [
        (0.0, "stable"),
        (0.0999, "stable"),
        (0.1, "moderate"),
        (0.2499, "moderate"),
        (0.25, "significant"),
        (3, "significant"),
    ],
)
def test_psi_band_edges(value, band):
    assert psi_band(value, moderate=0.1, significant=0.25) == band


def test_shifted_normal_is_flagged_and_an_unshifted_one_is_not():
    rng = np.random.default_rng(RNG_SEED)
    ref = _reference(rng.normal(size=20_000))
    edges, fractions, sketch = (np.array(ref[k]) for k in ("edges", "fractions", "quantiles"))
    same, shifted = rng.normal(size=2_000), rng.normal(loc=0.5, size=2_000)
    assert psi(bin_counts(same, edges), fractions) < 0.03
    assert ks_against_sketch(same, sketch)[1] > 0.01
    assert psi(bin_counts(shifted, edges), fractions) > 0.2
    assert ks_against_sketch(shifted, sketch)[1] < 1e-10


def test_ks_equals_scipy_on_continuous_data():
    sample = np.random.default_rng(RNG_SEED).uniform(size=500)
    statistic, p_value = ks_against_sketch(sample, np.linspace(0, 1, 101))  # the sketch of U(0, 1) is exact
    expected = stats.kstest(sample, "uniform")
    assert statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert p_value == pytest.approx(expected.pvalue, rel=1e-6)


def test_ks_does_not_mistake_ties_for_drift():
    """Integer data: scipy's kstest compares each tied value with the CDF after the jump; we compare both limits."""
    rng = np.random.default_rng(RNG_SEED)
    sketch = np.quantile(rng.poisson(3, size=50_000), np.linspace(0, 1, 101))
    same = rng.poisson(3, size=2_000).astype(float)
    statistic, p_value = ks_against_sketch(same, sketch)
    naive = stats.kstest(same, lambda x: sketch_cdf(sketch, x))
    assert statistic < 0.03 and p_value > 0.01
    assert naive.statistic > 0.1  # the jump at 0 (5 % of the mass) alone
    shifted = rng.poisson(4, size=2_000).astype(float)
    assert ks_against_sketch(shifted, sketch)[1] < 1e-10


def test_sketch_cdf_limits_at_a_tie():
    sketch = np.array([0.0, 1.0, 1.0, 1.0, 2.0])  # quantiles at 0, 25, 50, 75, 100 %
    assert sketch_cdf(sketch, np.array([1.0]), side="left")[0] == pytest.approx(0.25)
    assert sketch_cdf(sketch, np.array([1.0]), side="right")[0] == pytest.approx(0.75)
    assert sketch_cdf(sketch, np.array([-1.0, 0.5, 3.0])).tolist() == pytest.approx([0.0, 0.125, 1.0])


def test_chi2_on_a_changed_mix():
    shares = np.array([0.5, 0.3, 0.2])
    _, p_same, dof = chi2_against_shares(np.array([500, 300, 200]), shares)
    assert p_same == pytest.approx(1.0) and dof == 2
    _, p_changed, _ = chi2_against_shares(np.array([800, 100, 100]), shares)
    assert p_changed < 1e-10


def test_chi2_pools_rare_and_unseen_levels():
    # expected 0 (a level the reference never saw) and 4 pool with the next smallest (6) to reach 5: 3 buckets
    observed, shares = np.array([3, 5, 7, 95, 90]), np.array([0.0, 0.02, 0.03, 0.5, 0.45])
    statistic, p_value, dof = chi2_against_shares(observed, shares)
    assert dof == 2 and np.isfinite(statistic)
    assert (statistic, p_value) == pytest.approx(tuple(stats.chisquare([15, 95, 90], [10, 100, 90])))
    assert chi2_against_shares(np.array([2, 1]), np.array([0.5, 0.5]))[1:] == (1.0, 0)  # nothing left to test


def test_reservoir_is_bounded_uniform_and_independent_of_chunking():
    values = np.arange(10_000, dtype=float)
    whole, chunked = Reservoir(500, seed=3), Reservoir(500, seed=3)
    whole.add(values)
    for chunk in np.array_split(values, 13):
        chunked.add(chunk)
    assert whole.values.size == 500 and whole.seen == 10_000
    np.testing.assert_array_equal(whole.values, chunked.values)
    assert set(whole.values) <= set(values)
    assert 4_000 < whole.values.mean() < 6_000  # not just the first or the last values


def _raw(contract: DataContract, n: int, *, seed: int, plan_pro: float = 0.4) -> pd.DataFrame:
    """``n`` raw text rows of the tiny contract (tests/conftest.py)."""
    rng = np.random.default_rng(seed)
    spend = np.round(rng.gamma(2.0, 20.0, size=n), 2).astype(str)
    spend[rng.random(n) < 0.1] = " "
    return pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "age": rng.integers(18, 90, size=n).astype(str),
            "spend": spend,
            "plan": np.where(rng.random(n) < plan_pro, "pro", "basic"),
            "active": np.where(rng.random(n) < 0.7, "Yes", "No"),
            "y": np.where(rng.random(n) < 0.3, "yes", "no"),
        },
        dtype="str",
    )


@pytest.fixture
def tiny_reference(tiny_contract: DataContract) -> dict:
    parsed, _ = parse_table(_raw(tiny_contract, 3_000, seed=1), tiny_contract)
    return compute_reference_stats(parsed, tiny_contract, bins=10)


def _accumulate(contract, reference, raw, *, chunks: int = 1, reservoir_size: int = 20_000) -> DriftAccumulator:
    accumulator = DriftAccumulator(reference, None, contract, reservoir_size=reservoir_size, seed=5)
    for part in np.array_split(np.arange(len(raw)), chunks):
        parsed, problems = parse_table(raw.iloc[part], contract)
        accumulator.update(parsed, problems=problems)
    return accumulator


def test_accumulator_over_chunks_equals_one_pass(tiny_contract, tiny_reference):
    raw = _raw(tiny_contract, 2_000, seed=2)
    raw.loc[raw.index[::50], "plan"] = "enterprise"
    one = _accumulate(tiny_contract, tiny_reference, raw, reservoir_size=500).report(DriftParams())
    many = _accumulate(tiny_contract, tiny_reference, raw, chunks=7, reservoir_size=500).report(DriftParams())
    assert one == many  # bin and level counts, missing and unknown counts, and the KS reservoir
    assert one["features"]["age"]["sample"] == 500


def test_same_data_is_stable_and_a_changed_mix_drifts(tiny_contract, tiny_reference):
    same = _accumulate(tiny_contract, tiny_reference, _raw(tiny_contract, 1_000, seed=3)).report(DriftParams())
    assert not any(f["drifted"] for f in same["features"].values()), same["features"]
    assert same["decision"] == {"retrain": False, "reasons": []}
    changed = _raw(tiny_contract, 1_000, seed=3, plan_pro=0.9)
    report = _accumulate(tiny_contract, tiny_reference, changed).report(DriftParams())
    plan = report["features"]["plan"]
    assert [n for n, f in report["features"].items() if f["drifted"]] == ["plan"]
    assert plan["band"] == "significant" and plan["test"] == "chi2" and plan["p_value"] < 1e-10
    assert report["decision"]["retrain"] and "plan" in report["decision"]["reasons"][0]
    loose = DriftParams(max_drifted_features=1)
    assert decide_retrain(report["features"], None, loose)["retrain"] is False


def test_unknown_levels_and_unparseable_values_are_counted_not_missing(tiny_contract, tiny_reference):
    raw = _raw(tiny_contract, 400, seed=4)
    raw.loc[raw.index[:20], "plan"] = "enterprise"  # 5 %
    raw.loc[raw.index[:8], "active"] = "maybe"  # 2 %
    raw.loc[raw.index[:4], "age"] = "old"  # 1 %, not a number
    raw.loc[raw.index[4:6], "age"] = "150"  # outside the contract's range
    report = _accumulate(tiny_contract, tiny_reference, raw).report(DriftParams())
    plan, active, age = (report["features"][n] for n in ("plan", "active", "age"))
    assert plan["unknown_share"] == pytest.approx(0.05) and plan["unknown_values"] == {"enterprise": 20}
    assert plan["distribution"]["levels"][-1] == "(unknown)" and plan["distribution"]["current"][-1] == 0.05
    assert active["unknown_share"] == pytest.approx(0.02) and active["missing_rate"]["current"] == 0.0
    assert age["unknown_share"] == pytest.approx(0.015) and age["unknown_values"] == {"old": 4, "150": 2}
    assert {"unknown_values"} <= set(plan["flags"]) and "unknown_values" in active["flags"]
    present = 3 * 400 + report["features"]["spend"]["values"]  # every value but the missing spends
    assert report["unknown_share"] == pytest.approx(34 / present, abs=1e-6)
    assert any("max_unknown_share" in r and "enterprise" in r for r in report["decision"]["reasons"])


def test_a_jump_in_missing_values_is_flagged(tiny_contract, tiny_reference):
    raw = _raw(tiny_contract, 400, seed=5)
    raw.loc[raw.index[:120], "spend"] = ""
    report = _accumulate(tiny_contract, tiny_reference, raw).report(DriftParams())
    spend = report["features"]["spend"]
    assert spend["missing_rate"]["reference"] == pytest.approx(0.1, abs=0.02)
    assert spend["missing_rate"]["current"] > 0.3 and "missing_rate" in spend["flags"]


def test_too_few_rows_and_a_reference_of_another_contract_are_refused(tiny_contract, tiny_reference):
    with pytest.raises(DataError, match="50 current row.*drift.min_rows is 200"):
        _accumulate(tiny_contract, tiny_reference, _raw(tiny_contract, 50, seed=6)).report(DriftParams())
    with pytest.raises(DataError, match="contract 'other'.*'tiny'"):
        DriftAccumulator({**tiny_reference, "contract": "other"}, None, tiny_contract)
    without_age = {**tiny_reference, "features": {k: v for k, v in tiny_reference["features"].items() if k != "age"}}
    with pytest.raises(DataError, match=r"lack feature\(s\) \['age'\]"):
        DriftAccumulator(without_age, None, tiny_contract)


def test_score_drift_uses_the_score_reference(tiny_contract, tiny_reference):
    rng = np.random.default_rng(RNG_SEED)
    score_reference = compute_score_reference(rng.beta(2, 5, size=1_000))
    raw = _raw(tiny_contract, 500, seed=7)
    for probabilities, drifted in ((rng.beta(2, 5, size=500), False), (rng.beta(5, 2, size=500), True)):
        accumulator = DriftAccumulator(tiny_reference, score_reference, tiny_contract)
        parsed, problems = parse_table(raw, tiny_contract)
        accumulator.update(parsed, probabilities, problems=problems)
        report = accumulator.report(DriftParams())
        assert report["score"]["drifted"] is drifted
        assert report["decision"]["retrain"] is drifted


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"psi_moderate": 0.3, "psi_significant": 0.25}, "must be below psi_significant"),
        ({"p_value": 1.5}, "drift.p_value"),
        ({"min_rows": 0}, "drift.min_rows"),
        ({"psi_moderat": 0.1}, "drift.psi_moderat: unknown key"),
    ],
)
def test_drift_params_are_validated(section, message):
    with pytest.raises(ConfigError, match=message):
        parse_section(DriftParams, section, where="drift")
