"""Typed models of every file that crosses stages or leaves the pipeline, and the hashes that seal them.

Writers build the model and ``write_json(path, record.model_dump(mode="json"))``; readers call
``read_artefact(path, Model)``: a renamed, missing, unknown or mistyped key fails where the file is read, with a
message naming the file and the key, instead of turning into a silent ``.get()`` default two stages later. Fields
are declared in the order the file holds them and none holds a time, so one run writes the same bytes as the next.

One module per stage that writes (``data`` for prepare and featurize, ``tune``, ``train``, ``evaluate``,
``package``), the serving settings (``serve``, packaged into the manifest) and what they share (``_base``). Every
public name is re-exported here; the service imports this package, the contract and the errors only.
"""

from tabrepro.artefacts._base import (
    ArtefactError,
    Count,
    Sha256,
    Share,
    Threshold,
    canonical_json,
    read_artefact,
    sha256_bytes,
    sha256_file,
    validate_artefact,
)
from tabrepro.artefacts.data import (
    ClassBalance,
    ClassShares,
    DataQuality,
    LevelReference,
    NumericReference,
    ReferenceStats,
    RowCounts,
    ScoreReference,
    TargetSummary,
)
from tabrepro.artefacts.evaluate import (
    BaselineMetrics,
    Baselines,
    BootstrapSettings,
    EvaluationMetrics,
    GateCheck,
    GateVerdict,
    Interval,
    Leakage,
    PackagedGate,
    ScoredMetrics,
    SegmentColumn,
    VsBaseline,
)
from tabrepro.artefacts.package import (
    MANIFEST_SCHEMA_VERSION,
    BentoReceipt,
    BentoRecord,
    GraphReport,
    Latency,
    PackagedGraph,
    PackagedModel,
    PackageReport,
    Parity,
    ServingGraph,
    ServingManifest,
)
from tabrepro.artefacts.serve import FallbackParams, LimitsParams, PredictionLogParams, RolloutParams, ServeParams
from tabrepro.artefacts.train import ModelMeta, TuningProvenance
from tabrepro.artefacts.tune import BestParams, FamilyCV, FamilyFolds, SearchSummary, TuneChoice, TuneMetrics

__all__ = [
    "MANIFEST_SCHEMA_VERSION",
    "ArtefactError",
    "BaselineMetrics",
    "Baselines",
    "BentoReceipt",
    "BentoRecord",
    "BestParams",
    "BootstrapSettings",
    "ClassBalance",
    "ClassShares",
    "Count",
    "DataQuality",
    "EvaluationMetrics",
    "FallbackParams",
    "FamilyCV",
    "FamilyFolds",
    "GateCheck",
    "GateVerdict",
    "GraphReport",
    "Interval",
    "Latency",
    "Leakage",
    "LevelReference",
    "LimitsParams",
    "ModelMeta",
    "NumericReference",
    "PackageReport",
    "PackagedGate",
    "PackagedGraph",
    "PackagedModel",
    "Parity",
    "PredictionLogParams",
    "ReferenceStats",
    "RolloutParams",
    "RowCounts",
    "ScoreReference",
    "ScoredMetrics",
    "SearchSummary",
    "SegmentColumn",
    "ServeParams",
    "ServingGraph",
    "ServingManifest",
    "Sha256",
    "Share",
    "TargetSummary",
    "Threshold",
    "TuneChoice",
    "TuneMetrics",
    "TuningProvenance",
    "VsBaseline",
    "canonical_json",
    "read_artefact",
    "sha256_bytes",
    "sha256_file",
    "validate_artefact",
]
