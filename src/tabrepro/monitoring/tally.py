"""Running per-feature tallies of current data, chunk by chunk, against one feature's reference statistics.

Bin and level counts are exact, so any chunking gives the same PSI and chi-squared; the KS test reads a bounded,
seeded reservoir sample. ``summarize`` turns a tally into plain numbers; verdicts against thresholds are made by
``tabrepro.monitoring.drift``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from tabrepro.monitoring.stats import Reservoir, bin_counts, chi2_against_shares, ks_against_sketch, psi

UNKNOWN = "(unknown)"  # the bucket of levels the contract does not declare
_MAX_EXAMPLES = 20  # distinct unknown values remembered per feature (the count of all of them is exact)


class _Tally:
    def __init__(self, reference: dict[str, Any]) -> None:
        self.reference = reference
        self.rows = self.missing = self.unknown = 0
        self.examples: Counter[str] = Counter()

    def _remember(self, seen: Iterable[tuple[str, int]]) -> None:
        for value, count in seen:
            if value in self.examples or len(self.examples) < _MAX_EXAMPLES:
                self.examples[value] += count

    def _common(self) -> dict[str, Any]:
        present = self.rows - self.missing
        return {
            "missing_rate": {
                "reference": self.reference.get("missing_rate", 0.0),
                "current": _round(self.missing / self.rows) if self.rows else None,
            },
            "unknown_share": _round(self.unknown / present) if present else 0.0,
            "unknown_values": dict(self.examples.most_common(5)),
        }


class NumericTally(_Tally):
    """Counts over the reference's quantile bins, a reservoir sample for KS, and what the contract refuses
    (tokens that are not numbers, numbers outside its range)."""

    def __init__(
        self,
        reference: dict[str, Any],
        *,
        reservoir_size: int,
        seed: int | np.random.SeedSequence,
        low: float | None = None,
        high: float | None = None,
    ) -> None:
        super().__init__(reference)
        self.edges = np.asarray(reference["edges"], dtype=float)
        self.counts = np.zeros(self.edges.size + 1, dtype=np.int64)
        self.sample = Reservoir(reservoir_size, seed=seed)
        self.low, self.high = low, high
        self.total, self.min, self.max = 0.0, np.inf, -np.inf

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
        self._remember((str(v), 1) for v in [*tokens, *(f"{x:g}" for x in present[outside][:_MAX_EXAMPLES])])
        self.counts += bin_counts(present, self.edges)
        self.sample.add(present)
        if present.size:
            self.total += float(present.sum())
            self.min, self.max = min(self.min, float(present.min())), max(self.max, float(present.max()))

    def summarize(self) -> dict[str, Any]:
        n = int(self.counts.sum())
        fractions, quantiles = self.reference["fractions"], self.reference["quantiles"]
        out: dict[str, Any] = {"type": self.reference.get("type", "numeric"), "values": n}
        if n and fractions:
            statistic, p_value = ks_against_sketch(self.sample.values, np.asarray(quantiles))
            out |= {"psi": _round(psi(self.counts, np.asarray(fractions))), "test": "ks"}
            out |= {"statistic": _round(statistic), "p_value": _sig(p_value), "sample": int(self.sample.values.size)}
        else:
            out |= {"psi": None, "test": None, "statistic": None, "p_value": None}
        out["mean"] = {"reference": self.reference.get("mean"), "current": _round(self.total / n) if n else None}
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
        self._remember([*((str(t), 1) for t in tokens), *((str(v), int(c)) for v, c in others.items())])

    def summarize(self) -> dict[str, Any]:
        frequencies = self.reference["frequencies"]
        shares = np.array([frequencies.get(level, 0.0) for level in self.levels])
        known = int(self.counts.sum())
        everything = np.append(self.counts, self.unknown)
        out: dict[str, Any] = {"type": self.reference["type"], "values": int(everything.sum())}
        if known and shares.sum() > 0:
            statistic, p_value, dof = chi2_against_shares(self.counts, shares)
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


def _round(x: float) -> float:
    return round(float(x), 6)


def _rounds(values: Any) -> list[float]:
    return [_round(v) for v in values]


def _sig(x: float) -> float:
    """p-values span hundreds of orders of magnitude: keep 4 significant digits, not 6 decimals."""
    return float(f"{x:.4g}")
