"""Drift statistics on small synthetic arrays, and the accumulator that feeds them chunk by chunk."""

from __future__ import annotations

from fractions import Fraction

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
    bin_counts,
    chi2_contingency_counts,
    exact_sum,
    ks_two_sample,
    mean_of_exact_sum,
    psi,
    psi_band,
    support_counts,
)
from tabrepro.monitoring.tally import MAX_EXAMPLES, Examples

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


def _ks(current: np.ndarray, reference: np.ndarray, *, parts: int = 1) -> tuple[float, float]:
    """The two-sample KS test as the tallies run it: support counts per part, added, then tested."""
    support = np.unique(reference)
    counts = sum(support_counts(part, support) for part in np.array_split(current, parts))
    return ks_two_sample(counts, reference)


@pytest.mark.parametrize(("n", "discrete"), [(400, False), (3_000, True), (25_000, False), (60_000, True)])
def test_ks_from_support_counts_is_scipy_two_sample(n, discrete):
    """Exact p up to 10,000 current values, asymptotic above: both as ks_2samp computes them, ties included."""
    rng = np.random.default_rng(n)
    reference, current = rng.normal(size=4_000), rng.normal(loc=0.03, size=n)
    if discrete:
        reference, current = np.round(reference * 3), np.round(current * 3)
    expected = stats.ks_2samp(current, reference)
    statistic, p_value = _ks(current, reference, parts=7)
    assert statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert p_value == pytest.approx(expected.pvalue, rel=1e-9)


def test_ks_p_stays_honest_at_volume_and_a_shift_is_still_flagged():
    """200k current rows against a 5,000-value reference sample: an unshifted sample keeps a uniform-ish p (the
    one-sample test against the reference as if exact would collapse it), a shift of 0.1 sd is flagged."""
    rng = np.random.default_rng(RNG_SEED)
    population = rng.normal(size=1_000_000)
    reference = rng.choice(population, size=5_000, replace=False)
    p_same = [_ks(rng.choice(population, size=200_000), reference)[1] for _ in range(5)]
    assert min(p_same) > 0.01, p_same
    statistic, p_shifted = _ks(rng.choice(population, size=200_000) + 0.1, reference)
    assert p_shifted < 1e-6 and statistic > 0.03
    one_sample = stats.kstest(rng.choice(population, size=200_000), stats.ecdf(reference).cdf.evaluate)
    assert one_sample.pvalue < 0.01  # what the issue reported: p collapses when the reference is taken as exact


def test_support_counts_cells():
    counts = support_counts(np.array([0.5, 1.0, 1.0, 1.5, 2.0, 9.0]), np.array([1.0, 2.0]))
    assert counts.tolist() == [1, 2, 1, 1, 1]  # below 1, at 1, between, at 2, above 2
    with pytest.raises(ValueError, match="5 current cells against a reference support of 3"):
        ks_two_sample(counts, np.array([1.0, 2.0, 3.0]))


def test_chi2_on_a_changed_mix():
    reference = np.array([500, 300, 200])
    _, p_same, dof = chi2_contingency_counts(reference, np.array([500, 300, 200]))
    assert p_same == pytest.approx(1.0) and dof == 2
    statistic, p_changed, _ = chi2_contingency_counts(reference, np.array([800, 100, 100]))
    expected = stats.chi2_contingency(np.array([reference, [800, 100, 100]]), correction=False)
    assert (statistic, p_changed) == pytest.approx((expected.statistic, expected.pvalue))
    assert p_changed < 1e-10


def test_chi2_on_counts_stays_honest_at_volume():
    """Level shares off by sampling noise of a 5,000-row reference: goodness of fit against the shares as exact
    flags 200k current rows of the same population; the contingency test does not."""
    rng = np.random.default_rng(RNG_SEED)
    shares = np.array([0.55, 0.25, 0.2])
    p_homogeneity, p_fit = [], []
    for _ in range(5):
        reference = rng.multinomial(5_000, shares)
        current = rng.multinomial(200_000, shares)
        p_homogeneity.append(chi2_contingency_counts(reference, current)[1])
        p_fit.append(stats.chisquare(current, reference / reference.sum() * current.sum()).pvalue)
    assert min(p_homogeneity) > 0.01, p_homogeneity
    assert min(p_fit) < 0.01, p_fit  # the one-sample test: some runs flag noise
    assert chi2_contingency_counts(rng.multinomial(5_000, shares), rng.multinomial(200_000, [0.5, 0.3, 0.2]))[1] < 1e-6


def test_chi2_pools_rare_and_unseen_levels():
    # a level unseen in the reference (current 3) and a rare one pool until the smaller expected count reaches 5
    reference, current = np.array([0, 20, 30, 500, 450]), np.array([3, 5, 7, 95, 90])
    statistic, p_value, dof = chi2_contingency_counts(reference, current)
    pooled = stats.chi2_contingency(np.array([[50, 500, 450], [15, 95, 90]]), correction=False)
    assert dof == 2 and (statistic, p_value) == pytest.approx((pooled.statistic, pooled.pvalue))
    assert chi2_contingency_counts(np.array([2, 1]), np.array([2, 1]))[1:] == (1.0, 0)  # nothing left to test
    with pytest.raises(ValueError, match="empty counts"):
        chi2_contingency_counts(np.array([0, 0]), np.array([1, 2]))


def test_exact_sum_is_independent_of_order_and_parts():
    values = np.random.default_rng(RNG_SEED).normal(scale=1e6, size=100_001) ** 3
    whole = exact_sum(values)
    assert sum(exact_sum(part) for part in np.array_split(values[::-1], 9)) == whole
    assert mean_of_exact_sum(whole, values.size) == pytest.approx(np.mean(values), rel=1e-12)
    few = [0.1, 0.2, -0.3, 1e-300, 7.5e300]
    assert mean_of_exact_sum(exact_sum(np.array(few)), 5) == float(sum(map(Fraction, few)) / 5)  # to the last bit
    assert exact_sum(np.array([-1.5, 0.25])) == exact_sum(np.array([-1.25]))


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


def _accumulate(contract, reference, raw, *, chunks: int = 1) -> DriftAccumulator:
    accumulator = DriftAccumulator(reference, None, contract)
    for part in np.array_split(np.arange(len(raw)), chunks):
        parsed, problems = parse_table(raw.iloc[part], contract)
        accumulator.update(parsed, problems=problems)
    return accumulator


def _odd_values(raw: pd.DataFrame) -> pd.DataFrame:
    """More distinct unknown values than the report remembers, spread over the rows; unparseable and out of range."""
    raw = raw.copy()
    raw.loc[raw.index[::7], "plan"] = [f"plan-{i % 37}" for i in range(len(raw.index[::7]))]
    raw.loc[raw.index[3::11], "age"] = [str(100 + i % 29) for i in range(len(raw.index[3::11]))]
    raw.loc[raw.index[5::13], "age"] = "old"
    return raw


def test_accumulator_over_chunks_equals_one_pass(tiny_contract, tiny_reference):
    raw = _odd_values(_raw(tiny_contract, 2_000, seed=2))
    one = _accumulate(tiny_contract, tiny_reference, raw).report(DriftParams())
    many = _accumulate(tiny_contract, tiny_reference, raw, chunks=7).report(DriftParams())
    assert one == many  # bin, level and support counts, missing and unknown counts, exact sums, examples
    assert one["features"]["age"]["reference_sample"] == 3_000  # every training value (fewer than 5,000)
    assert len(one["features"]["plan"]["unknown_values"]) == 5


def test_merged_partitions_equal_one_pass_in_any_order(tiny_contract, tiny_reference):
    """What Dask does: an accumulator per partition, merged; the report is that of one pass, to the last digit."""
    raw = _odd_values(_raw(tiny_contract, 3_000, seed=8))
    rng = np.random.default_rng(RNG_SEED)
    score_reference = compute_score_reference(rng.beta(2, 5, size=800))
    probabilities = rng.beta(2.2, 5, size=len(raw))
    one = DriftAccumulator(tiny_reference, score_reference, tiny_contract)
    parsed, problems = parse_table(raw, tiny_contract)
    one.update(parsed, probabilities, problems=problems)
    parts = []
    for rows in np.array_split(np.arange(len(raw)), 5):
        part = DriftAccumulator(tiny_reference, score_reference, tiny_contract)
        parsed, problems = parse_table(raw.iloc[rows], tiny_contract)
        part.update(parsed, probabilities[rows], problems=problems)
        parts.append(part)
    merged = parts[3]
    for part in (parts[1], parts[4], parts[0], parts[2]):
        merged.merge(part)
    assert merged.report(DriftParams()) == one.report(DriftParams())
    with pytest.raises(ValueError, match="with a score reference and one without"):
        merged.merge(DriftAccumulator(tiny_reference, None, tiny_contract))


def test_unknown_examples_keep_exact_counts_of_a_stable_subset():
    values = [(f"v{i}", i + 1) for i in range(60)]
    whole, merged = Examples(), Examples()
    whole.add(values)
    for chunk in (values[40:], values[:13], values[13:40]):
        part = Examples()
        part.add(chunk)
        merged.merge(part)
    assert merged.counts == whole.counts and len(whole.counts) == MAX_EXAMPLES
    assert all(whole.counts[v] == c for v, c in values if v in whole.counts)


def test_at_200k_rows_the_same_population_keeps_honest_p_values_and_a_shift_is_flagged(tiny_contract, tiny_reference):
    """The reference is a 3,000-row sample; 200,000 current rows of the same population do not make its sampling
    noise significant (the tests are two-sample), while a small real shift still is."""
    same = _raw(tiny_contract, 200_000, seed=11)
    report = _accumulate(tiny_contract, tiny_reference, same, chunks=4).report(DriftParams())
    p_values = {name: f["p_value"] for name, f in report["features"].items()}
    assert min(p_values.values()) > 0.01, p_values
    assert not report["decision"]["retrain"], report["decision"]
    older = same.assign(age=(same["age"].astype(int) + 6).clip(upper=95).astype(str), plan="pro")
    shifted = _accumulate(tiny_contract, tiny_reference, older, chunks=4).report(DriftParams())
    age, plan = shifted["features"]["age"], shifted["features"]["plan"]
    assert age["p_value"] < 1e-6 and age["statistic"] > 0.05 and plan["p_value"] < 1e-6


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
    assert set(report["features"]["spend"]) >= {"reference_sample", "statistic", "p_value"}
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
    old = {
        k: {f: v for f, v in s.items() if f not in ("sample", "counts")} for k, s in tiny_reference["features"].items()
    }
    with pytest.raises(
        DataError, match=r"no sample or level counts for \['age', 'spend', 'plan', 'active'\].*featurize"
    ):
        DriftAccumulator({**tiny_reference, "features": old}, None, tiny_contract)


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
    old = {k: v for k, v in score_reference.items() if k != "sample"}
    with pytest.raises(DataError, match=r"score reference has no sample.*dvc repro package"):
        DriftAccumulator(tiny_reference, old, tiny_contract)


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
