"""The drift report (``tabrepro drift``, ``tabrepro score --drift-report``) as a typed model: what was read, the
thresholds, the decision, the drift of the scores and of each feature, and the figures drawn.

``to_json`` gives the report file's layout, key for key and in the same order: a key that only some entries have
(a numeric feature's ``mean``, a test's ``reference_sample`` or ``dof``, the inputs of one kind of source, the
figures once drawn) is left out where it is None, never written as null.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer

from tabrepro.config.params import DriftParams
from tabrepro.monitoring.stats import Band

Flag = Literal["distribution", "missing_rate", "unknown_values"]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    _absent_when_none: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _leave_out_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if v is not None or k not in self._absent_when_none}


class Mean(_Part):
    reference: float | None
    current: float | None


class MissingRate(_Part):
    reference: float
    current: float | None  # None: no current rows


class BinDistribution(_Part):
    """A numeric feature's (or the scores') shares per bin of the reference's quantile edges."""

    edges: list[float]
    reference: list[float]
    current: list[float]


class LevelDistribution(_Part):
    """A boolean or categorical feature's shares per level, unknown levels last."""

    levels: list[str]
    reference: list[float]
    current: list[float]


class FeatureDrift(_Part):
    """One feature: PSI and its band, the two-sample test (KS for numbers, chi-squared for levels; None when there
    is nothing to compare), missing and unknown values, the thresholds crossed (``flags``) and the distributions."""

    _absent_when_none = frozenset({"reference_sample", "dof", "mean"})

    type: Literal["numeric", "boolean", "categorical"]
    values: int
    psi: float | None
    band: Band | None
    test: Literal["ks", "chi2"] | None
    statistic: float | None
    p_value: float | None
    reference_sample: int | None = None  # KS: the size of the reference sample
    dof: int | None = None  # chi-squared: its degrees of freedom
    mean: Mean | None = None  # numeric features only
    missing_rate: MissingRate
    unknown_share: float
    unknown_values: dict[str, int]  # the most frequent, with their counts
    flags: list[Flag]
    drifted: bool
    distribution: BinDistribution | LevelDistribution


class ScoreDrift(_Part):
    """The packaged model's predicted probabilities against its test-split scores (never missing or unknown);
    ``of`` names what is compared for the other tasks ("prediction", "predicted class"), absent for binary."""

    _absent_when_none = frozenset({"reference_sample", "mean", "of"})

    values: int
    psi: float | None
    band: Band | None
    test: Literal["ks"] | None
    statistic: float | None
    p_value: float | None
    reference_sample: int | None = None
    mean: Mean | None = None
    flags: list[Flag]
    drifted: bool
    distribution: BinDistribution
    of: str | None = None

    @property
    def name(self) -> str:
        """What drifted, in words: the predicted probability (binary), the prediction, the predicted class."""
        return self.of or "predicted probability"


class ScoreNote(_Part):
    """Too few scored rows to judge the scores."""

    values: int
    note: str


class RetrainDecision(_Part):
    retrain: bool
    reasons: list[str]


class ModelRef(_Part):
    version: str
    onnx_sha256: str


class DriftInputs(_Part):
    """What was read: a table (or many, ``files``), a prediction log (``role``, ``model_versions``), or the input of
    ``tabrepro score``; the rows, how many were scored (and refused, by reason), the reference and the model."""

    _absent_when_none = frozenset({"files", "role", "refused", "refused_by", "model_versions"})

    current: str
    kind: Literal["csv", "parquet", "log"]
    files: list[str] | None = None
    role: str | None = None
    scored: int
    refused: int | None = None
    refused_by: dict[str, int] | None = None
    model_versions: dict[str, int] | None = None
    rows: int
    reference: str
    reference_rows: int
    contract: str
    model: ModelRef


class DriftReport(_Part):
    """The whole report; ``figures`` (their paths) once they are drawn."""

    _absent_when_none = frozenset({"figures"})

    inputs: DriftInputs
    thresholds: DriftParams
    decision: RetrainDecision
    score: ScoreDrift | ScoreNote | None
    unknown_share: float
    features: dict[str, FeatureDrift]
    figures: list[str] | None = None

    def to_json(self) -> dict[str, Any]:
        """The report file's content (``write_json`` writes it in this order)."""
        return self.model_dump(mode="json")

    def moved(self) -> dict[str, FeatureDrift]:
        """The features that drifted or left the stable PSI band."""
        return {n: f for n, f in self.features.items() if f.drifted or f.band not in (None, "stable")}
