"""Pure statistics of drift: PSI and its bands, the two-sample Kolmogorov-Smirnov test against the reference's
sample, chi-squared on the 2 x k contingency of reference and current level counts, and exact sums. No files,
no params: plain arrays in, numbers out.

Everything the current side needs is a vector of integer counts (or an exact integer sum), so statistics computed
per chunk or per partition merge by addition into exactly the numbers of one pass over the whole data.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import stats

EPSILON = 1e-4  # share given to an empty bin, so that PSI stays finite (the usual choice)
MIN_EXPECTED = 5.0  # chi-squared needs about 5 expected counts per cell; smaller levels are pooled
EXACT_KS_ROWS = 10_000  # scipy's ks_2samp computes the exact p up to this many values, the asymptotic one above
SUM_SCALE = 1127  # every finite float64 times 2**SUM_SCALE is an integer (the smallest is 2**-1074)

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


def support_counts(values: np.ndarray, support: np.ndarray) -> np.ndarray:
    """Counts of ``values`` in the 2k + 1 cells that the k distinct, sorted ``support`` values cut the line into:
    below the first, equal to the first, between the first and the second, ..., above the last.

    These counts fix the current sample's ECDF at every support value (both one-sided limits), which is all the
    two-sample KS statistic against a sample with that support needs; they add up across chunks and partitions.
    """
    values = np.asarray(values, dtype=float)
    left = np.searchsorted(support, values, side="left")
    on_value = np.searchsorted(support, values, side="right") > left
    return np.bincount(2 * left + on_value, minlength=2 * np.size(support) + 1)


def ks_two_sample(current_counts: np.ndarray, reference_sample: np.ndarray) -> tuple[float, float]:
    """Two-sided two-sample KS test of the current values (as ``support_counts`` over the distinct values of
    ``reference_sample``) against ``reference_sample``: (statistic, p-value), the numbers of ``scipy.stats.ks_2samp``
    on the two samples (its exact p up to ``EXACT_KS_ROWS`` current values, the asymptotic one with the effective
    size n m / (n + m) above: the reference's own sampling error is part of the test, so p does not collapse
    at large n)."""
    reference = np.sort(np.asarray(reference_sample, dtype=float))
    support, ref_counts = np.unique(reference, return_counts=True)
    counts = np.asarray(current_counts, dtype=np.int64)
    if counts.size != 2 * support.size + 1:
        raise ValueError(f"{counts.size} current cells against a reference support of {support.size} values")
    n, m = int(counts.sum()), reference.size
    if n == 0 or m == 0:
        raise ValueError("KS test of an empty sample")
    if n <= EXACT_KS_ROWS:
        result = stats.ks_2samp(_stand_in(counts, support), reference)
        return float(result.statistic), float(result.pvalue)
    current = np.cumsum(counts)
    ref_after = np.cumsum(ref_counts) / m  # G(v), then G just below v
    ref_before = ref_after - ref_counts / m
    statistic = max(
        float(np.max(np.abs(current[1::2] / n - ref_after))), float(np.max(np.abs(current[0:-1:2] / n - ref_before)))
    )
    p_value = stats.kstwo.sf(statistic, np.round(n * m / (n + m)))
    return statistic, float(np.clip(p_value, 0.0, 1.0))


def _stand_in(counts: np.ndarray, support: np.ndarray) -> np.ndarray:
    """Values with the given cell counts: each support value for its own cell, and for the cell between two
    support values, the next float above the lower one (below the first: one less; above the last: one more)."""
    below = np.concatenate([[support[0] - 1.0], np.nextafter(support[:-1], support[1:]), [support[-1] + 1.0]])
    cells = np.empty(2 * support.size + 1)
    cells[0::2], cells[1::2] = below, support
    return np.repeat(cells, counts)


def chi2_contingency_counts(reference: np.ndarray, current: np.ndarray) -> tuple[float, float, int]:
    """Chi-squared test of homogeneity on the 2 x k table of reference and current level counts:
    (statistic, p-value, degrees of freedom), without continuity correction.

    Levels whose smaller expected count is below ``MIN_EXPECTED`` (rare, or unseen on one side) are pooled,
    rarest first, until the pool reaches it; with fewer than two levels left there is nothing to test (p = 1).
    """
    table = np.vstack([np.asarray(reference, dtype=float), np.asarray(current, dtype=float)])
    rows = table.sum(axis=1)
    if np.any(rows <= 0):
        raise ValueError("chi-squared test of empty counts (reference or current)")
    table = _pool_rare(table, rows.min() / rows.sum())
    if table.shape[1] < 2:
        return 0.0, 1.0, 0
    statistic, p_value, dof, _ = stats.chi2_contingency(table, correction=False)
    return float(statistic), float(p_value), int(dof)


def _pool_rare(table: np.ndarray, smallest_row_share: float) -> np.ndarray:
    expected = table.sum(axis=0) * smallest_row_share  # the smaller expected count of each level
    order = np.argsort(expected, kind="stable")
    table, expected = table[:, order], expected[order]
    small = int(np.sum(expected < MIN_EXPECTED))
    if small == 0:
        return table
    k = min(max(small, int(np.searchsorted(np.cumsum(expected), MIN_EXPECTED, side="left")) + 1), expected.size)
    return np.hstack([table[:, :k].sum(axis=1, keepdims=True), table[:, k:]])


def exact_sum(values: np.ndarray) -> int:
    """The exact sum of finite float64 ``values`` times ``2**SUM_SCALE``, as an integer: sums of chunks or
    partitions add up to the sum of the whole, in any order, to the last bit (a float sum would not)."""
    mantissa, exponent = np.frexp(np.asarray(values, dtype=np.float64))
    whole = (mantissa * 2.0**53).astype(np.int64)  # exact: 53 significant bits
    high, low = whole >> 26, whole & ((1 << 26) - 1)  # 27 + 26 bits: int64 sums of 2**36 values cannot overflow
    total = 0
    for e in np.unique(exponent):
        chosen = exponent == e
        part = (int(high[chosen].sum()) << 26) + int(low[chosen].sum())
        total += part << int(e - 53 + SUM_SCALE)
    return total


def mean_of_exact_sum(total: int, n: int) -> float:
    """``exact_sum(values) / len(values)``, correctly rounded."""
    return total / (n << SUM_SCALE)
