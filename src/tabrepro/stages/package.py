"""package: the whole fitted pipeline as ONNX graphs, proven equal to it on the test split, and a bento.

Two graphs of the pipeline: ``model.onnx`` (skl2onnx) and ``model_tensor.onnx`` (plain tensor ops after the string
encoders, for GPU providers); which provider runs which is measured here and sealed in the manifest (``graphs``).
Refuses, building nothing, a model that failed the promotion gate recorded by ``evaluate`` (unless
``package.override_gate`` gives a reason). Fails, building nothing, when either graph and scikit-learn disagree
beyond ``package.tolerance`` or on any label at the threshold chosen on val. The bento is built offline from the files
this stage has just verified and exported to ``paths.bento``; it is labelled with the git revision, the model's
sha256, the test ROC-AUC and the gate verdict.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from sklearn.pipeline import Pipeline

import tabrepro
from tabrepro.artefacts import (
    BentoRecord,
    EvaluationMetrics,
    PackagedModel,
    PackageReport,
    ServeParams,
    ServingManifest,
    read_artefact,
    sha256_bytes,
    sha256_file,
)
from tabrepro.config.params import PackageParams, PathsParams, read_section
from tabrepro.contract.spec import DataContract, load_contract
from tabrepro.evaluation.gate import enforce_gate
from tabrepro.io.persistence import load_skops
from tabrepro.io.splits import read_splits
from tabrepro.io.staging import staged_outputs, staging_folder, write_json
from tabrepro.monitoring.drift import compute_score_reference
from tabrepro.serving.runtime import MANIFEST_FILE, MODEL_FILE
from tabrepro.stages import run_stage
from tabrepro.training.modeling import load_model
from tabrepro.training.onnx_export import check_graphs, frame_to_records

log = logging.getLogger(__name__)

BENTOFILE_TEMPLATE = Path("bentos/bentofile.yaml")
# The code the bento carries: the service and what it may import (the import contract serving -> contract,
# artefacts, errors is checked in tests/unit/test_architecture.py), nothing of training, evaluation or the stages.
BENTO_CODE = ("__init__.py", "errors.py", "artefacts.py", "contract", "serving")


def git_revision() -> str:
    proc = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else "unknown"


def build_bento(serving_dir: Path, destination: Path, *, labels: dict[str, str], version: str) -> str:
    """Build the bento from ``serving_dir`` and the tabrepro package, offline; publish it in the BentoML store as
    ``<name>:<version>`` and ``<name>:latest``; export it to ``destination``.

    BentoML saves a bento by copying it file by file into its store (``bento.yaml`` first) and moves ``latest``
    after that: a build killed midway left an entry that loads but lacks files. So the bento is built into a
    private store in ``BENTOML_HOME/tmp/.staging-<pid>-*`` (which the next build removes once that process is
    gone), then moved into the store with one rename, and ``latest`` is replaced with another.
    """
    os.environ.setdefault("BENTOML_HOME", str(Path.cwd() / ".bentoml"))
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
    import bentoml
    from bentoml._internal.bento import BentoStore
    from bentoml._internal.configuration.containers import BentoMLContainer

    store = Path(BentoMLContainer.bento_store_dir.get())
    with staging_folder(Path(BentoMLContainer.tmp_bento_store_dir.get())) as private:
        ctx = _build_context(private / "ctx", serving_dir, labels)
        bento = bentoml.bentos.build_bentofile(
            str(ctx / "bentofile.yaml"), build_ctx=str(ctx), version=version, _bento_store=BentoStore(private / "store")
        )
        name, tag = bento.tag.name, str(bento.tag)
        _publish(private / "store" / name / version, store / name / version, private=private)
    latest = str(bentoml.bentos.get(f"{name}:latest").tag)
    if latest != tag:
        raise RuntimeError(f"BentoML store {store}: {name}:latest resolves to {latest}, not to {tag} just built")
    bentoml.export_bento(tag, str(destination.resolve()))  # BentoML reads a relative path from / (measured)
    return tag


def _build_context(ctx: Path, serving_dir: Path, labels: dict[str, str]) -> Path:
    """The service's code (``BENTO_CODE``), ``models/serving`` and the bentofile (labels, pinned packages)."""
    spec = yaml.safe_load(BENTOFILE_TEMPLATE.read_text(encoding="utf-8"))
    spec["labels"] = labels
    spec["python"]["packages"] = [f"{p}=={metadata.version(p)}" for p in spec["python"]["packages"]]
    package = Path(tabrepro.__file__).parent
    for part in BENTO_CODE:
        source, target = package / part, ctx / "tabrepro" / part
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    shutil.copytree(serving_dir, ctx / "models" / "serving")
    (ctx / "bentofile.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return ctx


def _publish(built: Path, target: Path, *, private: Path) -> None:
    """Move the built version into the store (the same version packaged before is replaced) and point ``latest``
    at it; each step is one rename within ``BENTOML_HOME``, so a kill leaves the store whole."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        os.replace(target, private / "replaced")
    os.replace(built, target)
    pointer = private / "latest"
    pointer.write_text(target.name, encoding="utf-8")
    os.replace(pointer, target.parent / "latest")


def run(paths: PathsParams, contract: DataContract, package: PackageParams, serve: ServeParams) -> None:
    metrics = read_artefact(paths.metrics, EvaluationMetrics, hint="run the evaluate stage")
    gate = enforce_gate(metrics.gate, override=package.override_gate, source=paths.metrics)
    preprocessor = load_skops(paths.preprocessor)
    model, meta = load_model(paths.model)
    pipeline = Pipeline([("pre", preprocessor), ("model", model)])
    test = read_splits(paths.prepared)["test"]
    records = frame_to_records(test, contract)
    p_pipeline = pipeline.predict_proba(test)[:, 1]
    graphs = check_graphs(
        pipeline,
        contract,
        records,
        p_pipeline,
        threshold=metrics.threshold,
        tolerance=package.tolerance,
        latency_rows=package.latency_rows,
        cpu_graph=package.cpu_graph,
    )
    onnx_bytes, p_onnx = graphs.files[MODEL_FILE], graphs.probabilities[MODEL_FILE]
    parity = graphs.reports[MODEL_FILE].parity.model_dump()
    latency = graphs.reports[MODEL_FILE].latency_single_row.model_dump()
    onnx_sha = sha256_bytes(onnx_bytes)
    manifest = ServingManifest.sealed(
        version=f"{contract.name}-{meta.family}-{onnx_sha[:12]}",
        onnx_sha256=onnx_sha,
        model_sha256=meta.sha256,
        threshold=metrics.threshold,
        test_roc_auc=metrics.roc_auc,
        serve=serve,
        contract=contract.model_dump(mode="json"),
        score_reference=compute_score_reference(p_onnx),
        graphs=graphs.serving,
    )
    labels = {
        "git_revision": git_revision(),
        "model_sha256": onnx_sha,
        "test_roc_auc": f"{metrics.roc_auc:.4f}",
        "gate": "overridden" if gate.overridden else "passed",
    }
    with staged_outputs(paths.serving, paths.package_report, paths.bento) as (serving_dir, report_path, bento_path):
        serving_dir.mkdir()
        for name, data in graphs.files.items():  # model.onnx and model_tensor.onnx
            (serving_dir / name).write_bytes(data)
        write_json(serving_dir / MANIFEST_FILE, manifest.model_dump(mode="json"))
        tag = (
            build_bento(serving_dir, bento_path, labels=labels, version=onnx_sha[:12]) if package.build_bento else None
        )
        if tag is None:
            bento_path.write_text("bento not built (package.build_bento is false)\n")
        report = PackageReport(
            parity=parity,
            gate=gate,
            model=PackagedModel(
                version=manifest.version,
                sha256=onnx_sha,
                size_bytes=len(onnx_bytes),
                manifest_sha256=sha256_file(serving_dir / MANIFEST_FILE),
            ),
            latency_single_row=latency,
            bento=BentoRecord(tag=tag, labels=labels),
            predictions_match_evaluate=bool(np.allclose(p_pipeline, _evaluated(paths), atol=1e-9)),
            graphs=graphs.reports,
        )
        write_json(report_path, report.model_dump(mode="json"))
    log.info(
        "packaged %s: max |Δp| %.2g, %d flips, single-row p50 %.0f µs, bento %s",
        manifest.version,
        parity["max_abs_diff"],
        parity["label_flips"],
        latency["p50_us"],
        tag,
    )


def _evaluated(paths: PathsParams) -> np.ndarray:
    import pandas as pd

    return pd.read_parquet(paths.predictions)["probability"].to_numpy()


def _main(params: dict[str, Any]) -> None:
    run(
        read_section(params, "paths", PathsParams),
        load_contract(params.get("data")),
        read_section(params, "package", PackageParams),
        read_section(params, "serve", ServeParams),
    )


def main() -> None:
    run_stage("package", _main)


if __name__ == "__main__":
    main()
