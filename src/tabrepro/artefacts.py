"""Typed models of every file that crosses stages or leaves the pipeline, and the hashes that seal them.

Writers build the model and ``write_json(path, record.model_dump(mode="json"))``; readers call
``read_artefact(path, Model)``: a renamed, missing, unknown or mistyped key fails where the file is read, with a
message naming the file and the key, instead of turning into a silent ``.get()`` default two stages later. Fields
are declared in the order the file holds them and none holds a time, so one run writes the same bytes as the next.

One module on purpose (longer than most): every file's layout in one place, in the order the pipeline writes
them. The serving settings live here because they are packaged into the serving manifest; the service imports
this module, the contract and the errors only.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    SerializerFunctionWrapHandler,
    StrictBool,
    StringConstraints,
    ValidationError,
    model_serializer,
    model_validator,
)

from tabrepro.errors import TabreproError

R = TypeVar("R", bound=BaseModel)

MANIFEST_SCHEMA_VERSION = 1  # the layout of models/serving/manifest.json this code writes and reads

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Share = Annotated[float, Field(ge=0, le=1)]  # a probability, a rate or a score in [0, 1]
Count = Annotated[int, Field(ge=0)]
Threshold = Annotated[float, Field(ge=0, allow_inf_nan=False)]  # "min_cost" may pick just above the top score


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ArtefactError(TabreproError, ValueError):
    """A file one stage wrote for another is missing, unreadable, truncated, not JSON or not in its layout."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def canonical_json(data: Any) -> bytes:
    """One byte string per JSON value, whatever the key order or spacing of the file it came from."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def read_artefact(path: str | Path, model: type[R], *, error: type[TabreproError] = ArtefactError, hint: str = "") -> R:
    """The JSON file at ``path`` as ``model``; ``error`` naming the file (and the key) when it cannot be.

    ``hint`` says what to run when the file is missing or unusable (e.g. "run the tune stage").
    """
    path, suffix = Path(path), f" ({hint})" if hint else ""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: not found{suffix}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read it: {exc}{suffix}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise error(f"{path}: not valid JSON, truncated or edited? ({exc.msg}: {where}){suffix}") from None
    return validate_artefact(data, model, source=str(path), error=error, hint=hint)


def validate_artefact(
    data: Any, model: type[R], *, source: str, error: type[TabreproError] = ArtefactError, hint: str = ""
) -> R:
    """``data`` (parsed JSON) as ``model``; ``error`` listing every bad key of ``source`` when it is not."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        problems = [_describe(err) for err in errors]
        whole_file = len(errors) == 1 and not errors[0]["loc"]  # seal or schema version: it says what to do
        suffix = f" ({hint})" if hint and not whole_file else ""
        if len(problems) == 1:
            raise error(f"{source}: {problems[0]}{suffix}") from None
        raise error(f"{source}: not in the layout of {model.__name__}{suffix}:\n  " + "\n  ".join(problems)) from None


def _describe(err: Any) -> str:
    loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "missing":
        return f"{loc}: missing (required key)"
    if err["type"] == "extra_forbidden":
        return f"{loc}: unknown key (a typo, or a file from another version?)"
    if not loc:  # a check of the whole file (seal, schema version): its message names the key
        return msg
    got = repr(err.get("input"))
    return f"{loc}: {msg} (got {got if len(got) <= 60 else got[:57] + '...'})"


# --- serving settings (params.yaml `serve`, packaged in the manifest) ---------------------------------------------


class PredictionLogParams(_Record):
    """The service's JSON-lines log of every scored record (``serve.prediction_log``), rotated by size."""

    enabled: bool = False
    path: str = Field(default="logs/predictions.jsonl", min_length=1)  # relative to the service's working dir
    max_bytes: int = Field(default=52_428_800, ge=1024)
    backups: int = Field(default=5, ge=0, le=1000)
    queue_size: int = Field(default=10_000, ge=1)  # requests waiting for the writer; past it they are dropped


class RolloutParams(_Record):
    """A candidate model next to the primary (``serve.rollout``): scored on every request but never returned
    (``shadow``), or answering ``canary_percent`` % of the ids (``canary``, sticky per id)."""

    mode: Literal["off", "shadow", "canary"] = "off"
    candidate_dir: str | None = None
    canary_percent: float = Field(default=0, ge=0, le=100, allow_inf_nan=False)


class FallbackParams(_Record):
    """A second verified serving folder that answers a request the served model's graph fails on
    (``serve.fallback``); ``/readyz`` says degraded for ``degraded_seconds`` after it last answered."""

    serving_dir: str | None = None
    degraded_seconds: float = Field(default=300, ge=0, le=86_400, allow_inf_nan=False)


class LimitsParams(_Record):
    """What one request may carry (``serve.limits``): a bigger body is refused with 413 before it is parsed, more
    records with 413 before any is validated, a longer text value (an id, a level) with 400 naming the field."""

    max_body_bytes: int = Field(default=16_777_216, ge=1024)
    max_records: int = Field(default=10_000, ge=1)
    max_text_chars: int = Field(default=256, ge=1)


class ServeParams(_Record):
    """Serving settings packaged with the model (overridable at run time by environment variables)."""

    providers: tuple[str, ...] = Field(default=("CPUExecutionProvider",), min_length=1)
    workers: int = Field(default=1, ge=1, le=64)  # worker processes of `bentoml serve` (TABREPRO_WORKERS overrides)
    limits: LimitsParams = LimitsParams()
    prediction_log: PredictionLogParams = PredictionLogParams()
    rollout: RolloutParams = RolloutParams()
    fallback: FallbackParams = FallbackParams()

    @model_serializer(mode="wrap")
    def _omit_defaults_added_later(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """``workers``, ``limits`` and ``fallback`` are left out while at their defaults, so a manifest sealed before
        they existed keeps its seal, and one packaged with the defaults is byte for byte what it was."""
        data = handler(self)
        for key in ("workers", "limits", "fallback"):
            if getattr(self, key) == type(self).model_fields[key].default:
                data.pop(key, None)
        return data


# --- prepare: reports/data_quality.json ------------------------------------------------------------------------


class RowCounts(_Record):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, serialize_by_alias=True)

    rows_in: Count = Field(alias="in")
    out: Count
    dropped: dict[str, Count]


class ClassBalance(_Record):
    rows: Count
    positive: Count
    positive_rate: Share


class DataQuality(_Record):
    """``reports/data_quality.json``: rows in and out of ``prepare`` and why, missing values, class balance."""

    contract: str
    rows: RowCounts
    ignored_columns: tuple[str, ...]
    missing_values: dict[str, Count]
    class_balance: dict[str, ClassBalance]
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


class NumericReference(_Record):
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


class LevelReference(_Record):
    """A boolean or categorical feature: the share of each level seen in training."""

    type: Literal["boolean", "categorical"]
    missing_rate: Share
    frequencies: dict[str, Share]
    counts: dict[str, Count] | None = None  # the chi-squared contingency's reference row (None: written before it)


class ReferenceStats(_Record):
    """``models/reference_stats.json``: the training split per feature, what drift checks compare against."""

    contract: str
    rows: int = Field(ge=1)
    features: dict[str, Annotated[NumericReference | LevelReference, Field(discriminator="type")]]


class ScoreReference(_Record):
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


# --- tune: models/best_params.json, reports/tune/metrics.json -------------------------------------------------


class SearchSummary(_Record):
    trials_requested: Count
    trials_completed: Count
    trials_pruned: Count
    cv_folds: int = Field(ge=2)


class BestParams(_Record):
    """``models/best_params.json``: the hyper-parameters ``train`` fits with, and where they came from."""

    model: str
    source: Literal["search", "config"]
    params: dict[str, JsonValue]
    cv_roc_auc: Share
    cv_roc_auc_std: float = Field(ge=0)
    cv_best_rounds: int | None
    search: SearchSummary


class FamilyCV(_Record):
    """One family's best trial, scored on the folds every family shares, against the family with the best mean."""

    cv_roc_auc_mean: Share  # the mean of the per-fold scores below (``choice.json`` lists them)
    cv_roc_auc_std: float = Field(ge=0)
    diff_to_best: float  # the mean over folds of (best family's score - this one's); 0 for the best
    diff_se: float = Field(ge=0)  # standard error of that mean
    within_one_se: StrictBool
    n_trials_complete: Count
    n_trials_pruned: Count


class TuneMetrics(_Record):
    """``reports/tune/metrics.json`` (a DVC metrics file): the chosen family's search (its best CV score and its
    size), how it was chosen, and every family searched (one under a pinned ``model``, each candidate under auto).
    Numbers in nested mappings only; the per-fold lists are in ``choice.json`` (``TuneChoice``)."""

    model: str
    best_cv_roc_auc: Share
    best_cv_roc_auc_std: float = Field(ge=0)
    cv_folds: int = Field(ge=2)
    n_trials_requested: Count  # per family
    n_trials_complete: Count
    n_trials_pruned: Count
    budget_bound: StrictBool  # tune.timeout stopped the search before n_trials finished
    timeout_s: float | None  # the search's wall time is in the run record (reports/runs/tune.json), not here
    selection: Literal["auto", "pinned"]
    best_family: str  # the best mean CV ROC-AUC; ``model`` differs when a simpler family is within one SE of it
    families: dict[str, FamilyCV]


class FamilyFolds(_Record):
    params: dict[str, JsonValue]
    best_rounds: int | None
    fold_scores: tuple[Share, ...]
    fold_diffs_to_best: tuple[float, ...]
    diff_to_best: float
    diff_se: float = Field(ge=0)
    within_one_se: StrictBool


class TuneChoice(_Record):
    """``reports/tune/choice.json``: the family chosen, the rule and its reason, and each family's per-fold scores
    on the shared folds (``folds_sha256`` digests their held-out row indices)."""

    model: str
    best_family: str
    reason: str
    rule: str
    simplicity_order: tuple[str, ...]
    cv_folds: int = Field(ge=2)
    folds_sha256: Sha256
    families: dict[str, FamilyFolds]


# --- train: models/model/meta.json ---------------------------------------------------------------------------


class TuningProvenance(_Record):
    source: Literal["search", "config"]
    cv_roc_auc: Share
    cv_roc_auc_std: float = Field(ge=0)
    search: SearchSummary


class ModelMeta(_Record):
    """``models/model/meta.json``: the model file (a bare name in the same folder), its sha256, how it was made."""

    family: str
    file: str = Field(pattern=r"^[^/\\]+$")
    sha256: Sha256
    feature_names: tuple[str, ...] = ()
    best_iteration: int | None = None
    seed: int | None = None
    hyperparameters: dict[str, JsonValue] = {}
    tuning: TuningProvenance | None = None
    engine: Literal["local", "dask"] = "local"  # where it was trained (train.engine); the file is the same kind

    @model_validator(mode="after")
    def _plain_name(self) -> ModelMeta:
        if self.file in (".", ".."):
            raise ValueError(f"file: {self.file!r} is not a file name")
        return self


# --- evaluate: reports/metrics.json (with the gate's verdict); package: its record of it -----------------------


class GateCheck(_Record):
    passed: StrictBool
    value: float
    limit: float


class GateVerdict(_Record):
    """The promotion gate's verdict, as ``evaluate`` records it (``gate`` in ``reports/metrics.json``)."""

    passed: StrictBool
    reasons: tuple[str, ...] = ()
    checks: dict[str, GateCheck] = {}

    @model_validator(mode="after")
    def _consistent(self) -> GateVerdict:
        failed = [name for name, check in self.checks.items() if not check.passed]
        if self.passed and (failed or self.reasons):
            raise ValueError(f"gate.passed is true, but it records failed checks {failed} or reasons")
        return self


class PackagedGate(GateVerdict):
    """The verdict as ``package`` recorded it (``gate`` in ``reports/package.json``): plus whether a failed gate
    was overridden (``package.override_gate``) and why. ``tabrepro report`` reads every file's gate with it."""

    overridden: StrictBool = False
    override_reason: str | None = None

    @model_validator(mode="after")
    def _override(self) -> PackagedGate:
        if self.overridden != bool(self.override_reason):
            raise ValueError("gate.overridden is true exactly when gate.override_reason gives the reason")
        if self.overridden and self.passed:
            raise ValueError("gate.overridden: a gate that passed is never overridden")
        return self


class Interval(_Record):
    lo: float
    hi: float


class VsBaseline(_Record):
    roc_auc_diff: float
    roc_auc_diff_ci: Interval


class BootstrapSettings(_Record):
    n: int = Field(ge=1)
    seed: int
    level: float = Field(gt=0, lt=1)


class SegmentColumn(_Record):
    """One segment column: metrics per level (a small level holds only ``n`` and its rates), the gaps."""

    levels: dict[str, dict[str, int | float]]
    roc_auc_gap: float | None
    recall_gap: float | None
    precision_gap: float | None
    positive_rate_gap: float | None


class Leakage(_Record):
    max_single_feature: str
    max_single_feature_auc: Share


class EvaluationMetrics(_Record):
    """``reports/metrics.json`` (a DVC metrics file: nested mappings of numbers, no lists of numbers)."""

    roc_auc: Share
    roc_auc_ci: Interval
    pr_auc: Share
    pr_auc_ci: Interval
    brier: Share
    brier_ci: Interval
    ece: Share
    log_loss: float = Field(ge=0)
    accuracy: Share
    f1: Share
    precision: Share
    recall: Share
    threshold: Threshold
    threshold_policy: str
    expected_cost: float
    n: int = Field(ge=1)
    positive_rate: Share
    vs_logistic: VsBaseline
    baselines: dict[str, dict[str, float]]
    bootstrap: BootstrapSettings
    segments: dict[str, SegmentColumn]
    leakage: Leakage
    gate: GateVerdict
    model: str
    model_sha256: Sha256


# --- package: models/serving/manifest.json, reports/package.json ------------------------------------------------


class ServingGraph(_Record):
    """One ONNX graph of the pipeline in the serving folder (issue 14: a provider may serve its own graph)."""

    file: str = Field(pattern=r"^[^/\\]+\.onnx$")
    sha256: Sha256


class _ManifestContent(_Record):
    schema_version: Literal[1]
    version: str = Field(min_length=1)
    onnx_sha256: Sha256
    model_sha256: Sha256
    threshold: Threshold
    test_roc_auc: Share
    serve: ServeParams
    contract: dict[str, JsonValue]  # the data contract as packaged; the service validates it with load_contract
    score_reference: ScoreReference
    # execution provider -> the graph it runs (chosen by measurement in package); None (manifests written before
    # it, sealed without the key): model.onnx on every provider
    graphs: dict[str, ServingGraph] | None = None

    def _sealed_fields(self) -> dict[str, Any]:
        """Every field the seal covers, as JSON; ``graphs`` only when set, so older manifests keep their seal."""
        return self.model_dump(mode="json", exclude={"seal"} | (set() if self.graphs is not None else {"graphs"}))

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


class Parity(_Record):
    max_abs_diff: float = Field(ge=0)
    label_flips: Count  # among the rows farther from the threshold than the tolerance
    near_threshold: Count = 0  # rows within the tolerance of the threshold: their side is not compared
    rows: int = Field(ge=1)
    tolerance: float = Field(gt=0)


class PackagedModel(_Record):
    version: str
    sha256: Sha256  # of model.onnx
    size_bytes: int = Field(ge=1)
    manifest_sha256: Sha256  # of manifest.json, as written


class Latency(_Record):
    p50_us: float = Field(ge=0)
    p99_us: float = Field(ge=0)
    rows: int = Field(ge=1)


class BentoRecord(_Record):
    tag: str | None  # None: package.build_bento is false
    labels: dict[str, str]
    archive_sha256: Sha256 | None = None  # of the exported archive (paths.bento), a reproducible build


class BentoReceipt(_Record):
    """``paths.bento_receipt``: present only while the BentoML store is known to hold ``tag`` (package removes it
    before touching the store and writes it once the store holds the bento), so a run killed in between leaves
    the package stage changed for ``dvc repro``."""

    tag: str | None  # None: package.build_bento is false
    archive_sha256: Sha256 | None


class GraphReport(_Record):
    """One packaged graph: its parity with the fitted pipeline and its speed on the CPU provider."""

    sha256: Sha256
    size_bytes: int = Field(ge=1)
    parity: Parity
    latency_single_row: Latency
    batch_rows_per_second: float = Field(ge=0)  # the whole test split in one run, median of repeats
    serves_on: tuple[str, ...]  # the providers the manifest gives this graph to


class PackagedGraph(_Record):
    """One packaged graph as ``reports/package.json`` records it: what it is and its parity, no timings (those
    are in the run record, ``reports/runs/package.json``)."""

    sha256: Sha256
    size_bytes: int = Field(ge=1)
    parity: Parity
    serves_on: tuple[str, ...]

    @classmethod
    def of(cls, report: GraphReport) -> PackagedGraph:
        return cls.model_validate(report.model_dump(include=set(cls.model_fields)))


class PackageReport(_Record):
    """``reports/package.json`` (a DVC metrics file): ONNX parity, the gate as packaged, the files, the bento.
    Parity and sizes only: measured latencies go to the run record, so the same inputs give the same bytes."""

    parity: Parity
    gate: PackagedGate
    model: PackagedModel
    bento: BentoRecord
    predictions_match_evaluate: StrictBool
    graphs: dict[str, PackagedGraph] | None = None  # file -> its record (None: written before the tensor graph)
