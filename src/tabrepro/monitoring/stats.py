"""Pure statistics of drift: PSI and its bands, KS against a quantile sketch, chi-squared against level shares,
and a bounded reservoir sample. No files, no params: plain arrays in, numbers out."""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import stats

EPSILON = 1e-4  # share given to an empty bin, so that PSI stays finite (the usual choice)
MIN_EXPECTED = 5.0  # chi-squared needs about 5 expected counts per bucket; smaller buckets are pooled

Band = Literal["stable", "moderate", "significant"]


def psi(current_counts: np.ndarray, reference_shares: np.ndarray, *, epsilon: float = EPSILON) -> float:
    """Population stability index, sum((c - r) * ln(c / r)) over bins, both shares floored at ``epsilon``."""
    counts = np.asarray(current_counts, dtype=float)
    if counts.shape != np.shape(reference_shares):
        raise ValueError(f"{counts.size} current bins against {np.size(reference_shares)} reference bins")
    if counts.sum() <= 0:
        raise ValueError("PSI of an empty current distribution")
    current = np.maximum(counts / counts.sum(), epsilon)
    reference = np.maximum(np.asarray(reference_shares, dtype=float), epsilon)
    return float(np.sum((current - reference) * np.log(current / reference)))


def psi_band(value: float, *, moderate: float, significant: float) -> Band:
    """``stable`` below ``moderate``, ``moderate`` from it up to ``significant``, ``significant`` from there."""
    if value >= significant:
        return "significant"
    return "moderate" if value >= moderate else "stable"


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin of the interior ``edges`` (len(edges) + 1 bins; a value on an edge goes right), as the
    reference statistics bin the training data."""
    edges = np.asarray(edges, dtype=float)
    return np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)


def sketch_cdf(quantiles: np.ndarray, x: np.ndarray, *, side: Literal["left", "right"] = "right") -> np.ndarray:
    """The CDF interpolated linearly between evenly spaced quantiles (0 %, ..., 100 %).

    ``side="right"`` is P(X <= x), ``side="left"`` is P(X < x). Repeated quantiles (ties in a discrete feature)
    make a jump, which is why both limits are needed.
    """
    q = np.asarray(quantiles, dtype=float)
    x = np.asarray(x, dtype=float)
    p = np.linspace(0.0, 1.0, q.size)
    k = np.searchsorted(q, x, side=side)
    lo, hi = np.clip(k - 1, 0, q.size - 1), np.clip(k, 0, q.size - 1)
    span = q[hi] - q[lo]
    frac = np.divide(x - q[lo], span, out=np.zeros_like(x), where=span > 0)
    cdf = p[lo] + (p[hi] - p[lo]) * np.clip(frac, 0.0, 1.0)
    return np.where(k == 0, 0.0, np.where(k == q.size, 1.0, cdf))


def ks_against_sketch(sample: np.ndarray, quantiles: np.ndarray) -> tuple[float, float]:
    """One-sample two-sided Kolmogorov-Smirnov test of ``sample`` against a reference quantile sketch.

    The statistic compares both one-sided limits at every distinct value, so ties (integer features such as a
    tenure in months) are not mistaken for drift, as ``scipy.stats.kstest`` would do with a jumping CDF. The
    p-value is the continuous-case one (``scipy.stats.kstwo``), which is conservative for discrete data.
    """
    values, counts = np.unique(np.asarray(sample, dtype=float), return_counts=True)
    n = int(counts.sum())
    if n == 0:
        raise ValueError("KS test of an empty sample")
    above = np.cumsum(counts) / n  # empirical P(X <= v)
    below = above - counts / n  # empirical P(X < v)
    statistic = max(
        float(np.max(np.abs(above - sketch_cdf(quantiles, values, side="right")))),
        float(np.max(np.abs(below - sketch_cdf(quantiles, values, side="left")))),
    )
    return statistic, float(stats.kstwo.sf(statistic, n))


def chi2_against_shares(observed: np.ndarray, shares: np.ndarray) -> tuple[float, float, int]:
    """Chi-squared goodness of fit of level counts to reference shares: (statistic, p-value, degrees of freedom).

    Levels whose expected count is below ``MIN_EXPECTED`` (rare or unseen in the reference) are pooled, smallest
    first, until the pool reaches it; with fewer than two buckets left there is nothing to test (p = 1).
    """
    observed = np.asarray(observed, dtype=float)
    shares = np.asarray(shares, dtype=float)
    n = observed.sum()
    if n <= 0 or shares.sum() <= 0:
        raise ValueError("chi-squared test of empty counts or empty reference shares")
    observed, expected = _pool_small(observed, shares / shares.sum() * n)
    if observed.size < 2:
        return 0.0, 1.0, 0
    statistic, p_value = stats.chisquare(observed, expected)
    return float(statistic), float(p_value), observed.size - 1


def _pool_small(observed: np.ndarray, expected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(expected, kind="stable")
    observed, expected = observed[order], expected[order]
    small = int(np.sum(expected < MIN_EXPECTED))
    if small == 0:
        return observed, expected
    k = min(max(small, int(np.searchsorted(np.cumsum(expected), MIN_EXPECTED, side="left")) + 1), expected.size)
    return (
        np.concatenate([[observed[:k].sum()], observed[k:]]),
        np.concatenate([[expected[:k].sum()], expected[k:]]),
    )


class Reservoir:
    """A uniform sample of at most ``size`` values of a stream, seeded.

    Every value gets a uniform random key and the ``size`` smallest keys are kept: the sample is uniform without
    replacement, and because keys are drawn in stream order from one generator, the sample does not depend on
    how the stream was cut into chunks.
    """

    def __init__(self, size: int, *, seed: int | np.random.SeedSequence) -> None:
        if size < 1:
            raise ValueError(f"reservoir size must be at least 1, got {size}")
        self.size = size
        self._rng = np.random.default_rng(seed)
        self._values = np.empty(0, dtype=float)
        self._keys = np.empty(0, dtype=float)
        self.seen = 0

    def add(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=float).ravel()
        self.seen += values.size
        values = np.concatenate([self._values, values])
        keys = np.concatenate([self._keys, self._rng.random(values.size - self._keys.size)])
        if keys.size > self.size:
            keep = np.argpartition(keys, self.size - 1)[: self.size]
            values, keys = values[keep], keys[keep]
        self._values, self._keys = values, keys

    @property
    def values(self) -> np.ndarray:
        """The sample, sorted (its order carries no information)."""
        return np.sort(self._values)
