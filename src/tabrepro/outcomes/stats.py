"""The statistics of ROC-AUC that decisions need, vectorised: DeLong's variance (one model, or two on the same
records), Hanley and McNeil's variance from an AUC and class counts alone (for sample sizes before any label),
and the sample sizes that follow from them."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.stats import norm, rankdata


def delong(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs of the columns of ``scores`` (rows x k) and their DeLong covariance (k x k) [DeLong et al. 1988;
    Sun and Xu 2014's midrank form]. ``y`` must hold both classes."""
    scores = scores.reshape(len(y), -1)
    pos, neg = scores[y == 1], scores[y == 0]
    m, n = len(pos), len(neg)
    if m == 0 or n == 0:
        raise ValueError("DeLong needs both classes")
    tx, ty = rankdata(pos, axis=0), rankdata(neg, axis=0)
    tz = rankdata(np.vstack([pos, neg]), axis=0)
    auc = (tz[:m].sum(axis=0) / m - (m + 1) / 2) / n
    v01 = (tz[:m] - tx) / n  # structural components of the positives
    v10 = 1.0 - (tz[m:] - ty) / m  # of the negatives
    cov = np.atleast_2d(np.cov(v01, rowvar=False)) / m + np.atleast_2d(np.cov(v10, rowvar=False)) / n
    return auc, cov


def hanley_mcneil_unit_variance(auc: float, prevalence: float) -> float:
    """n x Var(AUC) for large n records of which ``prevalence`` are positive (Hanley and McNeil 1982)."""
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    return (q1 - auc**2) / (1 - prevalence) + (q2 - auc**2) / prevalence


def hanley_mcneil_se(auc: float, positives: int, negatives: int) -> float:
    """The standard error of an AUC estimated on ``positives`` and ``negatives`` records."""
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)
    return math.sqrt(max(var, 0.0) / (positives * negatives))


def labels_for_precision(auc: float, prevalence: float, *, half_width: float, alpha: float) -> int:
    """The fewest labelled records whose (1 - alpha) CI of the AUC is at most ``half_width`` on each side."""
    z = norm.ppf(1 - alpha / 2)
    return smallest_n(lambda n: z * _se_at(auc, prevalence, n) <= half_width)


def _se_at(auc: float, prevalence: float, n: int) -> float:
    pos = min(max(round(n * prevalence), 1), n - 1)
    return hanley_mcneil_se(auc, pos, n - pos)


def smallest_n(enough: Callable[[int], bool], *, limit: int = 10**9) -> int:
    """The smallest n >= 2 with ``enough(n)`` (monotone in n), by doubling then bisection; ``limit`` if none."""
    lo, hi = 1, 2
    while not enough(hi):
        lo, hi = hi, hi * 2
        if hi > limit:
            return limit
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if enough(mid) else (mid, hi)
    return hi


def unpaired_sample_size(
    auc: float, prevalence: float, *, effect: float, alpha: float, power: float, ratio: float
) -> int:
    """Labelled records the candidate needs (the primary ``ratio`` times as many) for a two-sided test at
    ``alpha`` to detect a difference of ``effect`` in AUC with ``power`` (Hanley-McNeil variances)."""
    z = norm.ppf(1 - alpha / 2) + norm.ppf(power)
    better = min(auc + effect, 0.999)
    variance = hanley_mcneil_unit_variance(better, prevalence) + hanley_mcneil_unit_variance(auc, prevalence) / ratio
    return math.ceil(float(variance * (z / effect) ** 2))
