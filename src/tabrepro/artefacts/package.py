"""What ``package`` writes: the sealed serving manifest (``models/serving/manifest.json``), ``reports/package.json``
and the bento receipt."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, JsonValue, model_validator

from tabrepro.artefacts._base import Count, Record, Sha256, Share, Threshold, YesNo, canonical_json, sha256_bytes
from tabrepro.artefacts.data import ScoreReference
from tabrepro.artefacts.evaluate import PackagedGate
from tabrepro.artefacts.serve import ServeParams

# The layout of models/serving/manifest.json this code writes and reads. 2: ``serve`` holds every setting, defaults
# included, and ``graphs`` is always present (1 left both out while at their defaults, to keep older seals).
MANIFEST_SCHEMA_VERSION = 2


class ServingGraph(Record):
    """One ONNX graph of the pipeline in the serving folder (issue 14: a provider may serve its own graph)."""

    file: str = Field(pattern=r"^[^/\\]+\.onnx$")
    sha256: Sha256


class _ManifestContent(Record):
    schema_version: Literal[2]
    version: str = Field(min_length=1)
    onnx_sha256: Sha256
    model_sha256: Sha256
    threshold: Threshold | None  # None: not a binary target (multiclass labels by argmax; regression none)
    test_roc_auc: Share | None  # binary: ROC-AUC; multiclass: macro one-vs-rest ROC-AUC; regression: None
    serve: ServeParams
    contract: dict[str, JsonValue]  # the data contract as packaged; the service validates it with load_contract
    score_reference: ScoreReference  # binary: P(positive); multiclass: the top-label probability; regression: y
    graphs: dict[str, ServingGraph]  # execution provider -> the graph it runs (chosen by measurement in package)
    # Issue 21: written only for a regression or multiclass target, so that a binary manifest keeps its bytes
    # (and schema_version 2): absent means binary.
    task: Literal["regression", "multiclass"] | None = None
    classes: tuple[str, ...] | None = None  # multiclass: the probability columns' order
    unit: str | None = None  # regression: the target's unit, when the contract names one

    def _sealed_fields(self) -> dict[str, Any]:
        """Every field the seal covers, as JSON."""
        return self.as_json(exclude={"seal"})

    def as_json(self, *, exclude: set[str] | None = None) -> dict[str, Any]:
        """The manifest as written: the task fields left out where they are None (a binary manifest's bytes)."""
        unset = {k for k in ("task", "classes", "unit") if getattr(self, k) is None}
        return self.model_dump(mode="json", exclude=unset | (exclude or set()))

    @model_validator(mode="before")
    @classmethod
    def _supported(cls, data: Any) -> Any:
        """Refuse another layout first, with the version this code reads, before complaining about its keys."""
        if not isinstance(data, Mapping):
            return data
        found = data.get("schema_version")
        if found != MANIFEST_SCHEMA_VERSION or isinstance(found, bool):
            what = "missing (a manifest from before schema versions)" if found is None else f"{found!r}"
            raise ValueError(
                f"schema_version: {what} is not supported; this tabrepro reads schema_version "
                f"{MANIFEST_SCHEMA_VERSION} only: package the model again (`dvc repro package`)"
            )
        return data


class ServingManifest(_ManifestContent):
    """``models/serving/manifest.json``: what the service needs besides the ONNX file, sealed.

    ``seal`` is the sha256 of the canonical JSON of every other field; reading checks it, so a threshold, contract
    or setting edited after packaging is refused like an edited model. Build one with ``ServingManifest.sealed``.
    """

    seal: Sha256

    @classmethod
    def sealed(cls, **fields: Any) -> ServingManifest:
        """The manifest of ``fields`` (every field but ``schema_version`` and ``seal``) with its seal."""
        content = _ManifestContent.model_validate({"schema_version": MANIFEST_SCHEMA_VERSION, **fields})
        data = content._sealed_fields()
        return cls.model_validate({**data, "seal": sha256_bytes(canonical_json(data))})

    def content_sha256(self) -> str:
        """The sha256 the seal must equal: of the canonical JSON of every field but the seal."""
        return sha256_bytes(canonical_json(self._sealed_fields()))

    @model_validator(mode="after")
    def _verify_seal(self) -> ServingManifest:
        actual = self.content_sha256()
        if actual != self.seal:
            raise ValueError(
                f"seal {self.seal} does not match sha256 {actual} of the manifest's contents: it was edited after "
                "packaging; refusing to use an altered manifest (package the model again)"
            )
        return self


class Parity(Record):
    max_abs_diff: float = Field(ge=0)
    label_flips: Count  # among the rows farther from the threshold than the tolerance
    near_threshold: Count = 0  # rows within the tolerance of the threshold: their side is not compared
    rows: int = Field(ge=1)
    tolerance: float = Field(gt=0)


class RegressionParity(Record):
    """Regression: max |Δ| between ONNX and the pipeline divided by ``scale``, the largest |prediction| of the
    pipeline on the test split (at least 1e-12), against ``tolerance``."""

    max_abs_diff: float = Field(ge=0)
    scale: float = Field(gt=0)
    max_rel_diff: float = Field(ge=0)
    rows: int = Field(ge=1)
    tolerance: float = Field(gt=0)


class MulticlassParity(Record):
    """Multiclass: max |Δp| over every class, and argmax flips among the rows whose top-two probability margin
    exceeds the tolerance (``near_tie``: rows within it, counted and not compared)."""

    max_abs_diff: float = Field(ge=0)
    label_flips: Count
    near_tie: Count = 0
    rows: int = Field(ge=1)
    tolerance: float = Field(gt=0)


AnyParity = Parity | MulticlassParity | RegressionParity


class PackagedModel(Record):
    version: str
    sha256: Sha256  # of model.onnx
    size_bytes: int = Field(ge=1)
    manifest_sha256: Sha256  # of manifest.json, as written


class Latency(Record):
    p50_us: float = Field(ge=0)
    p99_us: float = Field(ge=0)
    rows: int = Field(ge=1)


class BentoRecord(Record):
    tag: str | None  # None: package.build_bento is false
    labels: dict[str, str]
    archive_sha256: Sha256 | None = None  # of the exported archive (paths.bento), a reproducible build


class BentoReceipt(Record):
    """``paths.bento_receipt``: present only while the BentoML store is known to hold ``tag`` (package removes it
    before touching the store and writes it once the store holds the bento), so a run killed in between leaves
    the package stage changed for ``dvc repro``."""

    tag: str | None  # None: package.build_bento is false
    archive_sha256: Sha256 | None


class GraphReport(Record):
    """One packaged graph: its parity with the fitted pipeline and its speed on the CPU provider."""

    sha256: Sha256
    size_bytes: int = Field(ge=1)
    parity: AnyParity
    latency_single_row: Latency
    batch_rows_per_second: float = Field(ge=0)  # the whole test split in one run, median of repeats
    serves_on: tuple[str, ...]  # the providers the manifest gives this graph to


class PackagedGraph(Record):
    """One packaged graph as ``reports/package.json`` records it: what it is and its parity, no timings (those
    are in the run record, ``reports/runs/package.json``)."""

    sha256: Sha256
    size_bytes: int = Field(ge=1)
    parity: AnyParity
    serves_on: tuple[str, ...]

    @classmethod
    def of(cls, report: GraphReport) -> PackagedGraph:
        return cls(sha256=report.sha256, size_bytes=report.size_bytes, parity=report.parity, serves_on=report.serves_on)


class PackageReport(Record):
    """``reports/package.json`` (a DVC metrics file): ONNX parity, the gate as packaged, the files, the bento.
    Parity and sizes only: measured latencies go to the run record, so the same inputs give the same bytes."""

    parity: AnyParity
    gate: PackagedGate
    model: PackagedModel
    bento: BentoRecord
    predictions_match_evaluate: YesNo
    graphs: dict[str, PackagedGraph]  # file -> its record
    task: Literal["regression", "multiclass"] | None = None  # as the manifest: absent (binary) is not written
    classes: tuple[str, ...] | None = None

    def as_json(self) -> dict[str, Any]:
        """The report as written: the task fields left out where they are None (a binary report's bytes)."""
        return self.model_dump(mode="json", exclude={k for k in ("task", "classes") if getattr(self, k) is None})
