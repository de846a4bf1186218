"""What ``prepare`` and ``featurize`` write about the data: ``reports/data_quality.json`` and
``models/reference_stats.json`` (the training split per feature, what drift checks compare against), and the
score reference (the same layout for the model's probabilities, packaged in the manifest)."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from tabrepro.artefacts._base import Count, Record, Sha256, Share


class RowCounts(Record):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, serialize_by_alias=True)

    rows_in: Count = Field(alias="in")
    out: Count
    dropped: dict[str, Count]


class ClassBalance(Record):
    rows: Count
    positive: Count
    positive_rate: Share


class ClassShares(Record):
    """A multiclass target in one split: every class's rows and share, in the contract's class order."""

    rows: Count
    counts: dict[str, Count]
    rates: dict[str, Share]


class TargetSummary(Record):
    """A regression target in one split: its range, quartiles and mean."""

    rows: Count
    min: float
    q1: float
    median: float
    q3: float
    max: float
    mean: float


class DataQuality(Record):
    """``reports/data_quality.json``: rows in and out of ``prepare`` and why, missing values, and the target per
    split (``class_balance``: a binary target's positive rate, a multiclass one's class shares, a regression
    one's summary)."""

    contract: str
    rows: RowCounts
    ignored_columns: tuple[str, ...]
    missing_values: dict[str, Count]
    class_balance: dict[str, ClassBalance | ClassShares | TargetSummary]
    source_sha256: Sha256


# --- featurize: models/reference_stats.json; package: the manifest's score reference ---------------------------


def _check_bins(edges: tuple[float, ...], fractions: tuple[float, ...], quantiles: tuple[float, ...]) -> None:
    if not (edges or fractions or quantiles):
        return  # no values at all (a feature missing in every training row)
    if len(fractions) != len(edges) + 1:
        raise ValueError(f"fractions: {len(fractions)} bin shares for {len(edges)} edges (expected edges + 1)")
    if list(edges) != sorted(edges) or list(quantiles) != sorted(quantiles):
        raise ValueError("edges and quantiles must be sorted ascending")


def _check_sample(sample: tuple[float, ...] | None) -> None:
    if sample is not None and (list(sample) != sorted(sample) or not all(math.isfinite(x) for x in sample)):
        raise ValueError("sample: must be finite numbers in ascending order")


class NumericReference(Record):
    """A numeric feature: quantile bin edges and each bin's share (PSI), a sample (KS), a quantile sketch, moments."""

    type: Literal["numeric"]
    missing_rate: Share
    edges: tuple[float, ...]
    fractions: tuple[Share, ...]
    quantiles: tuple[float, ...]
    mean: float | None = None  # None: no value to average
    std: float | None = None
    sample: tuple[float, ...] | None = None  # sorted, seeded, bounded: the two-sample KS test's reference (None: old)

    @model_validator(mode="after")
    def _bins(self) -> NumericReference:
        _check_bins(self.edges, self.fractions, self.quantiles)
        _check_sample(self.sample)
        return self


class LevelReference(Record):
    """A boolean or categorical feature: the share of each level seen in training."""

    type: Literal["boolean", "categorical"]
    missing_rate: Share
    frequencies: dict[str, Share]
    counts: dict[str, Count] | None = None  # the chi-squared contingency's reference row (None: written before it)


class ReferenceStats(Record):
    """``models/reference_stats.json``: the training split per feature, what drift checks compare against."""

    contract: str
    rows: int = Field(ge=1)
    features: dict[str, Annotated[NumericReference | LevelReference, Field(discriminator="type")]]


class ScoreReference(Record):
    """The packaged model's probabilities on the test split (the layout of a numeric feature's statistics)."""

    rows: int = Field(ge=1)
    edges: tuple[float, ...]
    fractions: tuple[Share, ...]
    quantiles: tuple[float, ...] = Field(min_length=1)
    mean: float
    std: float
    sample: tuple[float, ...] | None = None  # as NumericReference.sample

    @model_validator(mode="after")
    def _bins(self) -> ScoreReference:
        _check_bins(self.edges, self.fractions, self.quantiles)
        _check_sample(self.sample)
        return self
