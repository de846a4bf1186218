"""Every file that crosses stages, from its real writer to its real reader, and refused with the file and the key
named when it is missing, truncated, not JSON, edited or of another layout.

One small real chain (500 raw rows, logistic regression, no search, no bento; the suite's ``sample_pipelines``)
writes every file once; each test reads a copy of what it needs.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tabrepro.artefacts import (
    MANIFEST_SCHEMA_VERSION,
    ArtefactError,
    DataQuality,
    EvaluationMetrics,
    PackageReport,
    ReferenceStats,
    ServeParams,
    ServingManifest,
    TuneMetrics,
    canonical_json,
    read_artefact,
    sha256_bytes,
    sha256_file,
)
from tabrepro.config.params import ModelParams, PackageParams, PathsParams, load_params
from tabrepro.contract.spec import DataContract, load_contract
from tabrepro.errors import TabreproError
from tabrepro.evaluation.gate import enforce_gate
from tabrepro.monitoring.check import open_model, start_drift
from tabrepro.reporting.report import parse_gate
from tabrepro.serving.runtime import ServingError, ServingModel
from tabrepro.stages import package
from tabrepro.stages.train import read_best_params
from tabrepro.training.modeling import ModelFileError, load_model
from tests.conftest import REPO, SamplePipelines, sample_params

LOGREG = ModelParams(name="logreg", params={"C": 1.0, "max_iter": 500}, search_space={})


CHAIN = {  # 500 raw rows, logistic regression, no search, a quick bootstrap, no bento
    "rows": 500,
    "seed": 3,
    "model": LOGREG,
    "evaluate": {"bootstrap": {"n": 30, "seed": 1, "level": 0.9}, "permutation_repeats": 1},
    "gate": {"max_ece": 0.5},
    "package": PackageParams(build_bento=False, latency_rows=10),
}


@pytest.fixture(scope="module")
def chain(sample_pipelines: SamplePipelines) -> tuple[Path, PathsParams, DataContract]:
    """prepare -> package, each stage's real run(), on 500 rows (shared); returns (folder, paths, contract)."""
    work = sample_pipelines(**CHAIN)
    params = sample_params(load_params(REPO / "params.yaml"))
    paths = PathsParams.model_validate(params["paths"])
    return work, _absolute(paths, work), load_contract(params["data"])


def _absolute(paths: PathsParams, root: Path) -> PathsParams:
    return paths.model_copy(update={k: str(root / v) for k, v in paths.model_dump().items() if isinstance(v, str)})


def _copy(src: str | Path, dest: Path) -> Path:
    """A copy of a file, or of a folder, at ``dest`` (tests edit copies; the chain is shared)."""
    (shutil.copytree if Path(src).is_dir() else shutil.copy)(src, dest)
    return dest


def _edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


# --- round trips: the real writer's file, read by the real reader ------------------------------------------------


def test_data_quality_round_trip(chain):
    _, paths, _ = chain
    quality = read_artefact(paths.data_quality, DataQuality)
    assert quality.rows.rows_in == 500 and sum(b.rows for b in quality.class_balance.values()) == quality.rows.out
    assert '"in": 500' in Path(paths.data_quality).read_text()  # written by its key, not the Python name
    assert quality.source_sha256 == sha256_file(Path(paths.data_quality).parents[1] / "raw" / "telco.csv")


def test_best_params_and_tune_metrics_round_trip(chain):
    _, paths, _ = chain
    best = read_best_params(paths.best_params, model=LOGREG)
    assert best.model == "logreg" and best.source == "config" and dict(best.params) == {"C": 1.0, "max_iter": 500}
    tuned = read_artefact(Path(paths.tune_reports) / "metrics.json", TuneMetrics)
    assert tuned.best_cv_roc_auc == best.cv_roc_auc and tuned.n_trials_requested == 0


def test_model_meta_round_trip(chain):
    _, paths, _ = chain
    model, meta = load_model(paths.model)
    best = read_best_params(paths.best_params, model=LOGREG)
    assert meta.family == "logreg" and meta.file == "model.skops" and meta.seed == 0
    assert meta.tuning is not None and meta.tuning.cv_roc_auc == best.cv_roc_auc
    assert dict(meta.hyperparameters) == dict(best.params) and len(meta.feature_names) == model.n_features_in_


def test_reference_stats_round_trip(chain):
    _, paths, contract = chain
    stats = read_artefact(paths.reference_stats, ReferenceStats)
    assert set(stats.features) == set(contract.features)
    tenure, gender = stats.features["tenure"], stats.features["gender"]
    assert tenure.type == "numeric" and len(tenure.fractions) == len(tenure.edges) + 1
    assert gender.type == "categorical" and sum(gender.frequencies.values()) == pytest.approx(1, abs=1e-5)
    _, manifest, contract = open_model(Path(paths.serving), load=False)
    accumulator = start_drift(Path(paths.reference_stats), manifest, contract)  # drift's reader
    assert accumulator.reference_rows == stats.rows and accumulator.scores is not None


def test_metrics_round_trip_into_package_and_report(chain):
    _, paths, _ = chain
    metrics = read_artefact(paths.metrics, EvaluationMetrics)
    _, meta = load_model(paths.model)
    assert metrics.pipeline_sha256 == meta.sha256 and metrics.roc_auc_ci.lo <= metrics.roc_auc <= metrics.roc_auc_ci.hi
    assert metrics.gate.passed and list(metrics.gate.checks) == ["max_ece"]
    record = enforce_gate(metrics.gate, override=None, source=paths.metrics)
    raw = json.loads(Path(paths.metrics).read_text())
    assert parse_gate(raw, source=paths.metrics) == record  # what `tabrepro report` reads
    assert set(raw["gate"]) == {"verdict", "reasons", "checks"}  # evaluate knows of no override
    assert _diffable(raw), "dvc metrics diff shows numbers in mappings, not in lists, and a boolean as -1/1"


def _diffable(value: Any) -> bool:
    """No JSON boolean (`dvc metrics diff` shows its change as -1 or 1: verdicts and flags are words) and no list
    of numbers (shown as one cell)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, list):
        return not any(isinstance(v, int | float) for v in value)
    if isinstance(value, dict):
        return all(_diffable(v) for v in value.values())
    return True


def test_manifest_round_trip_into_the_service(chain):
    _, paths, contract = chain
    served = ServingModel(paths.serving)
    metrics = read_artefact(paths.metrics, EvaluationMetrics)
    assert served.packaged.schema_version == MANIFEST_SCHEMA_VERSION == 2
    assert served.threshold == metrics.threshold and served.contract == contract
    assert served.version == f"{contract.name}-logreg-{served.sha256[:12]}"
    assert served.packaged.as_json() == json.loads((Path(paths.serving) / "manifest.json").read_text())
    body = served.packaged.as_json(exclude={"seal"})
    assert served.packaged.seal == sha256_bytes(canonical_json(body))


def test_package_report_round_trip(chain):
    _, paths, _ = chain
    report = read_artefact(paths.package_report, PackageReport)
    assert report.model.manifest_sha256 == sha256_file(Path(paths.serving) / "manifest.json")
    assert report.model.sha256 == ServingModel(paths.serving).sha256
    assert report.gate.passed and not report.gate.overridden and report.bento.tag is None
    raw = json.loads(Path(paths.package_report).read_text())
    assert parse_gate(raw, source="package.json") == report.gate and _diffable(raw)
    assert (raw["gate"]["verdict"], raw["gate"]["overridden"], raw["predictions_match_evaluate"]) == (
        "pass",
        "no",
        "yes",
    )


def test_package_again_writes_the_same_sealed_manifest(chain, tmp_path, monkeypatch):
    """No time or machine-dependent value is sealed: the same inputs give the same manifest bytes."""
    work, paths, contract = chain
    again = _copy(work, tmp_path / "again")
    monkeypatch.chdir(again)
    relative = PathsParams.model_validate(yaml.safe_load((REPO / "params.yaml").read_text())["paths"])
    package.run(relative, contract, PackageParams(build_bento=False, latency_rows=10), ServeParams())
    manifest = Path(paths.serving) / "manifest.json"
    assert (again / relative.serving / "manifest.json").read_bytes() == manifest.read_bytes()
    report = read_artefact(again / relative.package_report, PackageReport)
    assert report.model.manifest_sha256 == sha256_file(manifest)


# --- refusals: every reader names the file and the key -----------------------------------------------------------


def _readers(chain: tuple[Path, PathsParams, DataContract]) -> dict[str, tuple[Path, Callable[[Path], Any]]]:
    """file -> (its path in the chain, the real reader of a copy of it). Files read with their folder (the model's
    meta.json, the serving manifest) are copied with it."""
    _, paths, _ = chain
    manifest = ServingModel.read_manifest(paths.serving)
    contract = load_contract(manifest.contract)
    return {
        "best_params": (Path(paths.best_params), lambda copy: read_best_params(copy, model=LOGREG)),
        "meta": (Path(paths.model) / "meta.json", lambda copy: load_model(copy.parent)),
        "reference_stats": (Path(paths.reference_stats), lambda copy: start_drift(copy, manifest, contract)),
        "metrics": (Path(paths.metrics), lambda copy: read_artefact(copy, EvaluationMetrics)),
        "manifest": (Path(paths.serving) / "manifest.json", lambda copy: ServingModel(copy.parent)),
        "package": (Path(paths.package_report), lambda copy: read_artefact(copy, PackageReport)),
        "tune_metrics": (Path(paths.tune_reports) / "metrics.json", lambda copy: read_artefact(copy, TuneMetrics)),
        "data_quality": (Path(paths.data_quality), lambda copy: read_artefact(copy, DataQuality)),
    }


FILES = ["best_params", "meta", "reference_stats", "metrics", "manifest", "package", "tune_metrics", "data_quality"]
# one key per file to remove, add next to, or retype
KEYS = {
    "best_params": ("params", "cv_roc_auc"),
    "meta": ("sha256", "seed"),
    "reference_stats": ("rows", "rows"),
    "metrics": ("threshold", "n"),
    "manifest": ("threshold", "threshold"),
    "package": ("gate", "predictions_match_evaluate"),
    "tune_metrics": ("cv_folds", "best_cv_roc_auc"),  # best_cv_roc_auc is optional: other tasks give best_cv_score
    "data_quality": ("class_balance", "source_sha256"),
}
FOLDERS = ("meta", "manifest")
ERRORS = {"best_params": "DataError", "meta": "ModelFileError", "reference_stats": "DataError", "manifest": "Serving"}


def _refused(chain, tmp_path: Path, name: str, change: Callable[[Path], None]) -> TabreproError:
    src, read = _readers(chain)[name]
    copy = (
        _copy(src.parent, tmp_path / src.parent.name) / src.name if name in FOLDERS else _copy(src, tmp_path / src.name)
    )
    change(copy)
    with pytest.raises(TabreproError) as info:
        read(copy)
    assert str(copy) in str(info.value), info.value  # the file is named
    assert type(info.value).__name__.startswith(ERRORS.get(name, "ArtefactError")), type(info.value)
    return info.value


@pytest.mark.parametrize("name", FILES)
def test_a_missing_key_is_named(chain, tmp_path, name):
    key = KEYS[name][0]
    error = _refused(chain, tmp_path, name, lambda p: _edit(p, lambda d: d.pop(key)))
    assert f"{key}: missing (required key)" in str(error)


@pytest.mark.parametrize("name", FILES)
def test_an_unknown_key_is_named(chain, tmp_path, name):
    error = _refused(chain, tmp_path, name, lambda p: _edit(p, lambda d: d.update(thresold=0.5)))
    assert "thresold: unknown key" in str(error)


@pytest.mark.parametrize("name", FILES)
def test_a_wrong_type_is_named(chain, tmp_path, name):
    key = KEYS[name][1]
    error = _refused(chain, tmp_path, name, lambda p: _edit(p, lambda d: d.update({key: "lots"})))
    assert f"{key}: " in str(error) and "'lots'" in str(error)


@pytest.mark.parametrize("name", FILES)
def test_a_truncated_file_is_refused_as_not_json(chain, tmp_path, name):
    def truncate(path: Path) -> None:
        text = path.read_text(encoding="utf-8")
        path.write_text(text[: len(text) // 2], encoding="utf-8")

    assert "not valid JSON" in str(_refused(chain, tmp_path, name, truncate))


@pytest.mark.parametrize("name", FILES)
def test_a_missing_file_is_named(chain, tmp_path, name):
    error = _refused(chain, tmp_path, name, lambda p: p.unlink())
    assert "not found" in str(error)


def test_a_nested_key_is_named_with_its_path(chain, tmp_path):
    def nested(data: dict[str, Any]) -> None:
        data["features"]["tenure"]["fractions"] = data["features"]["tenure"]["fractions"][:-1]

    error = _refused(chain, tmp_path, "reference_stats", lambda p: _edit(p, nested))
    assert "features.tenure.numeric: fractions:" in str(error) and "expected edges + 1" in str(error)


# --- the manifest's seal and schema version -------------------------------------------------------------------


def test_an_edited_manifest_threshold_is_refused_like_an_edited_model(chain, tmp_path):
    error = _refused(chain, tmp_path, "manifest", lambda p: _edit(p, lambda d: d.update(threshold=0.01)))
    assert isinstance(error, ServingError)
    assert "seal" in str(error) and "does not match" in str(error) and "edited after packaging" in str(error)


def test_a_manifest_edited_anywhere_is_refused_but_not_for_its_formatting(chain, tmp_path):
    def contract(data: dict[str, Any]) -> None:
        data["contract"]["features"]["tenure"]["max"] = 1000

    assert "does not match" in str(_refused(chain, tmp_path, "manifest", lambda p: _edit(p, contract)))
    _, paths, _ = chain
    reformatted = _copy(paths.serving, tmp_path / "reformatted")
    data = json.loads((reformatted / "manifest.json").read_text())
    (reformatted / "manifest.json").write_text(json.dumps(dict(reversed(data.items()))))  # other order, one line
    assert ServingModel(reformatted).threshold == read_artefact(paths.metrics, EvaluationMetrics).threshold


@pytest.mark.parametrize(("version", "shown"), [(1, "1"), (3, "3"), ("2", "'2'"), (None, "missing")])
def test_another_schema_version_is_refused_naming_the_supported_one(chain, tmp_path, version, shown):
    def change(data: dict[str, Any]) -> None:
        data.pop("schema_version")
        if version is not None:
            data["schema_version"] = version

    error = _refused(chain, tmp_path, "manifest", lambda p: _edit(p, change))
    assert f"schema_version: {shown}" in str(error) and "reads schema_version 2 only" in str(error)


def test_a_resealed_manifest_is_accepted(chain, tmp_path):
    """What package does: an edit followed by a new seal is a new, valid manifest."""
    _, paths, _ = chain
    folder = _copy(paths.serving, tmp_path / "serving")
    data = json.loads((folder / "manifest.json").read_text())
    fields = {k: v for k, v in data.items() if k not in ("schema_version", "seal")}
    resealed = ServingManifest.sealed(**{**fields, "threshold": 0.42})
    (folder / "manifest.json").write_text(json.dumps(resealed.model_dump(mode="json")))
    assert ServingModel(folder).threshold == 0.42 and resealed.seal != data["seal"]


def test_model_file_name_cannot_leave_its_folder(chain, tmp_path):
    error = _refused(chain, tmp_path, "meta", lambda p: _edit(p, lambda d: d.update(file="../model.skops")))
    assert isinstance(error, ModelFileError) and "file: String should match pattern" in str(error)


def test_artefact_error_is_bad_input():
    assert issubclass(ArtefactError, TabreproError) and issubclass(ServingError, TabreproError)
