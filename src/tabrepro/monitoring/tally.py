"""Running per-feature tallies of current data, chunk by chunk or partition by partition, against one feature's
reference statistics.

Everything a tally holds is exact and merges exactly: bin and level counts, the counts at the reference sample's
values that fix the two-sample KS statistic, missing and unknown counts, an integer-exact sum, min and max, and
a bottom-k (by a stable hash) set of unknown values with their exact counts. So any chunking, and any split into
partitions merged with ``merge``, gives the numbers of one pass. ``summarize`` turns a tally into plain numbers;
verdicts against thresholds are made by ``tabrepro.monitoring.decision``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from tabrepro.monitoring.stats import (
    bin_counts,
    chi2_contingency_counts,
    exact_sum,
    ks_two_sample,
    mean_of_exact_sum,
    psi,
    support_counts,
)

UNKNOWN = "(unknown)"  # the bucket of levels the contract does not declare
MAX_EXAMPLES = 20  # distinct unknown values remembered per feature (the count of all of them is exact)


class Examples:
    """Unknown values with exact counts: the ``MAX_EXAMPLES`` distinct ones whose stable hash is smallest.

    A value among the smallest hashes of the whole stream is among the smallest of every part of it, so each part
    kept all of its occurrences: merging parts gives exactly the set and counts of one pass.
    """

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, seen: Iterable[tuple[str, int]]) -> None:
        for value, count in seen:
            self.counts[value] += count
        if len(self.counts) > MAX_EXAMPLES:
            kept = sorted(self.counts, key=_stable_hash)[:MAX_EXAMPLES]
            self.counts = Counter({value: self.counts[value] for value in kept})

    def merge(self, other: Examples) -> None:
        self.add(other.counts.items())

    def most_common(self, k: int) -> dict[str, int]:
        return dict(sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))[:k])


class _Tally:
    def __init__(self, reference: dict[str, Any]) -> None:
        self.reference = reference
        self.rows = self.missing = self.unknown = 0
        self.examples = Examples()

    def _merge_common(self, other: _Tally) -> None:
        self.rows += other.rows
        self.missing += other.missing
        self.unknown += other.unknown
        self.examples.merge(other.examples)

    def _common(self) -> dict[str, Any]:
        present = self.rows - self.missing
        return {
            "missing_rate": {
                "reference": self.reference.get("missing_rate", 0.0),
                "current": _round(self.missing / self.rows) if self.rows else None,
            },
            "unknown_share": _round(self.unknown / present) if present else 0.0,
            "unknown_values": self.examples.most_common(5),
        }


class NumericTally(_Tally):
    """Counts over the reference's quantile bins (PSI) and at its sample's values (two-sample KS), and what the
    contract refuses (tokens that are not numbers, numbers outside its range)."""

    def __init__(self, reference: dict[str, Any], *, low: float | None = None, high: float | None = None) -> None:
        super().__init__(reference)
        self.edges = np.asarray(reference["edges"], dtype=float)
        self.counts = np.zeros(self.edges.size + 1, dtype=np.int64)
        self.sample = np.sort(np.asarray(reference.get("sample") or (), dtype=float))
        self.support = np.unique(self.sample)
        self.at_support = np.zeros(2 * self.support.size + 1, dtype=np.int64)
        self.low, self.high = low, high
        self.total, self.min, self.max = 0, np.inf, -np.inf

    def add(self, values: np.ndarray, *, unparsed: np.ndarray | None = None, tokens: Sequence[str] = ()) -> None:
        values = np.asarray(values, dtype=float)
        unparsed = np.zeros(values.size, dtype=bool) if unparsed is None else unparsed
        present = values[~np.isnan(values)]
        outside = (present < (-np.inf if self.low is None else self.low)) | (
            present > (np.inf if self.high is None else self.high)
        )
        self.rows += values.size
        self.missing += int(np.sum(np.isnan(values) & ~unparsed))
        self.unknown += int(unparsed.sum() + outside.sum())
        odd, times = np.unique(present[outside], return_counts=True)
        outside_counts = zip(map(_number_text, odd), times.tolist(), strict=True)
        self.examples.add([*Counter(str(t) for t in tokens).items(), *outside_counts])
        self.counts += bin_counts(present, self.edges)
        if self.support.size:
            self.at_support += support_counts(present, self.support)
        if present.size:
            self.total += exact_sum(present)
            self.min, self.max = min(self.min, float(present.min())), max(self.max, float(present.max()))

    def merge(self, other: NumericTally) -> None:
        """Add ``other`` (a tally of other rows against the same reference)."""
        self._merge_common(other)
        self.counts += other.counts
        self.at_support += other.at_support
        self.total += other.total
        self.min, self.max = min(self.min, other.min), max(self.max, other.max)

    def summarize(self) -> dict[str, Any]:
        n = int(self.counts.sum())
        fractions = self.reference["fractions"]
        out: dict[str, Any] = {"type": self.reference.get("type", "numeric"), "values": n}
        if n and fractions and self.sample.size:
            statistic, p_value = ks_two_sample(self.at_support, self.sample)
            out |= {"psi": _round(psi(self.counts, np.asarray(fractions))), "test": "ks"}
            out |= {"statistic": _round(statistic), "p_value": _sig(p_value), "reference_sample": self.sample.size}
        else:
            out |= {"psi": None, "test": None, "statistic": None, "p_value": None}
        mean = _round(mean_of_exact_sum(self.total, n)) if n else None
        out["mean"] = {"reference": self.reference.get("mean"), "current": mean}
        out |= self._common()
        out["distribution"] = self._distribution(n)
        return out

    def _distribution(self, n: int) -> dict[str, Any]:
        quantiles = self.reference["quantiles"] or [0.0]
        low, high = min(quantiles[0], self.min), max(quantiles[-1], self.max)
        high = high if high > low else low + 1.0
        edges = [low, *self.edges.tolist(), high]
        current = self.counts / n if n else np.zeros(self.counts.size)
        reference = self.reference["fractions"] or [0.0] * self.counts.size  # no values in training: all missing
        return {"edges": _rounds(edges), "reference": reference, "current": _rounds(current)}


class LevelTally(_Tally):
    """Counts per level (categoricals, and booleans as "0.0"/"1.0" as the reference writes them), with levels
    outside ``levels`` and boolean tokens that do not parse counted as unknown."""

    def __init__(self, reference: dict[str, Any], *, levels: list[str]) -> None:
        super().__init__(reference)
        self.levels = list(dict.fromkeys([*levels, *reference["frequencies"]]))
        self.counts = np.zeros(len(self.levels), dtype=np.int64)

    def add(self, column: pd.Series, *, unparsed: np.ndarray | None = None, tokens: Sequence[str] = ()) -> None:
        unparsed = np.zeros(len(column), dtype=bool) if unparsed is None else unparsed
        missing = column.isna().to_numpy()
        self.rows += len(column)
        self.missing += int(np.sum(missing & ~unparsed))
        seen = column[~missing].astype("str").value_counts()
        known = seen.reindex(self.levels, fill_value=0)
        self.counts += known.to_numpy(dtype=np.int64)
        others = seen.drop(index=self.levels, errors="ignore")
        self.unknown += int(others.sum() + unparsed.sum())
        self.examples.add([*Counter(str(t) for t in tokens).items(), *((str(v), int(c)) for v, c in others.items())])

    def merge(self, other: LevelTally) -> None:
        """Add ``other`` (a tally of other rows against the same reference)."""
        self._merge_common(other)
        self.counts += other.counts

    def summarize(self) -> dict[str, Any]:
        frequencies, reference_counts = self.reference["frequencies"], self.reference.get("counts") or {}
        shares = np.array([frequencies.get(level, 0.0) for level in self.levels])
        expected = np.array([reference_counts.get(level, 0) for level in self.levels])
        known = int(self.counts.sum())
        everything = np.append(self.counts, self.unknown)
        out: dict[str, Any] = {"type": self.reference["type"], "values": int(everything.sum())}
        if known and expected.sum() > 0:
            statistic, p_value, dof = chi2_contingency_counts(expected, self.counts)
            out |= {"psi": _round(psi(everything, np.append(shares, 0.0))), "test": "chi2"}
            out |= {"statistic": _round(statistic), "p_value": _sig(p_value), "dof": dof}
        else:
            out |= {"psi": None, "test": None, "statistic": None, "p_value": None}
        out |= self._common()
        current = everything / everything.sum() if everything.sum() else np.zeros(everything.size)
        out["distribution"] = {
            "levels": [*self.levels, UNKNOWN],
            "reference": _rounds(np.append(shares, 0.0)),
            "current": _rounds(current),
        }
        return out


def _stable_hash(value: str) -> int:
    """The same in every process and on every machine (Python's ``hash`` of a str is salted per process)."""
    return int.from_bytes(hashlib.blake2b(value.encode(), digest_size=8).digest(), "big")


def _number_text(x: float) -> str:
    """Short (``%g``) when that reads back as the same number, else the exact ``repr``: one text per number."""
    short = f"{x:g}"
    return short if float(short) == x else repr(float(x))


def _round(x: float) -> float:
    return round(float(x), 6)


def _rounds(values: Any) -> list[float]:
    return [_round(v) for v in values]


def _sig(x: float) -> float:
    """p-values span hundreds of orders of magnitude: keep 4 significant digits, not 6 decimals."""
    return float(f"{x:.4g}")
