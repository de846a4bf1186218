"""package: the whole fitted pipeline as ONNX graphs, proven equal to it on the test split, and a bento.

Two graphs of the pipeline: ``model.onnx`` (skl2onnx) and ``model_tensor.onnx`` (plain tensor ops after the string
encoders, for GPU providers); which provider runs which is measured here and sealed in the manifest (``graphs``).
Refuses, building nothing, a model that failed the promotion gate recorded by ``evaluate`` (unless
``package.override_gate`` gives a reason). Fails, building nothing, when either graph and scikit-learn disagree
beyond ``package.tolerance`` or on any label at the threshold chosen on val. The bento is built offline from the files
this stage has just verified and exported to ``paths.bento`` as a reproducible archive; it is labelled with the
sha256 of the code it carries, the model's sha256, the test ROC-AUC and the gate verdict. ``reports/package.json``
holds parity and sizes only; what varies from run to run (latencies, build time, git revision, host) goes to the
run record ``reports/runs/package.json``. ``paths.bento_receipt`` exists only while the store holds the tag.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from tabrepro.artefacts import (
    BentoReceipt,
    BentoRecord,
    EvaluationMetrics,
    GraphReport,
    MulticlassMetrics,
    PackagedGraph,
    PackagedModel,
    PackageReport,
    RegressionMetrics,
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
from tabrepro.io.runs import write_run_record
from tabrepro.io.splits import read_splits
from tabrepro.io.staging import staged_outputs, write_json
from tabrepro.monitoring.scores import compute_task_score_reference
from tabrepro.packaging.store import build_bento, code_sha256
from tabrepro.serving.runtime import MANIFEST_FILE, MODEL_FILE
from tabrepro.stages import run_stage
from tabrepro.training.modeling import load_model, predict_output
from tabrepro.training.onnx_export import check_graphs, frame_to_records

log = logging.getLogger(__name__)

BENTOFILE_TEMPLATE = Path("bentos/bentofile.yaml")


def run(paths: PathsParams, contract: DataContract, package: PackageParams, serve: ServeParams) -> None:
    started = datetime.now(UTC)
    task = contract.target.task
    metrics = _read_metrics(paths, task)
    gate = enforce_gate(metrics.gate, override=package.override_gate, source=paths.metrics)
    preprocessor = load_skops(paths.preprocessor)
    model, meta = load_model(paths.model)
    pipeline = Pipeline([("pre", preprocessor), ("model", model)])
    test = read_splits(paths.prepared)["test"]
    records = frame_to_records(test, contract)
    # binary: predict_proba's own dtype, as before (float32 for XGBoost): the parity numbers keep their bytes
    p_pipeline = pipeline.predict_proba(test)[:, 1] if task == "binary" else predict_output(pipeline, test, task=task)
    threshold = metrics.threshold if isinstance(metrics, EvaluationMetrics) else None
    graphs = check_graphs(
        pipeline,
        contract,
        records,
        p_pipeline,
        threshold=threshold,
        tolerance=package.tolerance,
        latency_rows=package.latency_rows,
        cpu_graph=package.cpu_graph,
    )
    onnx_bytes, p_onnx = graphs.files[MODEL_FILE], graphs.probabilities[MODEL_FILE]
    parity = graphs.reports[MODEL_FILE].parity
    onnx_sha = sha256_bytes(onnx_bytes)
    manifest = ServingManifest.sealed(
        version=f"{contract.name}-{meta.family}-{onnx_sha[:12]}",
        onnx_sha256=onnx_sha,
        model_sha256=meta.sha256,
        threshold=threshold,
        test_roc_auc=_test_auc(metrics),
        serve=serve,
        contract=contract.model_dump(mode="json"),
        score_reference=compute_task_score_reference(p_onnx, task=task),
        graphs=graphs.serving,
        **_task_fields(contract),
    )
    labels = {
        "code_sha256": code_sha256(),
        "model_sha256": onnx_sha,
        **_headline(metrics),
        "gate": "overridden" if gate.overridden else "passed",
    }
    outputs = (paths.serving, paths.package_report, paths.bento, paths.bento_receipt)
    with staged_outputs(*outputs, withhold=True) as (serving_dir, report_path, bento_path, receipt_path):
        serving_dir.mkdir()
        for name, data in graphs.files.items():  # model.onnx and model_tensor.onnx
            (serving_dir / name).write_bytes(data)
        write_json(serving_dir / MANIFEST_FILE, manifest.as_json())
        built = datetime.now(UTC)
        bento = _bento(serving_dir, bento_path, paths, labels=labels, version=onnx_sha[:12], build=package.build_bento)
        build_seconds = (datetime.now(UTC) - built).total_seconds()
        write_json(receipt_path, BentoReceipt(tag=bento.tag, archive_sha256=bento.archive_sha256).model_dump())
        report = PackageReport(
            parity=parity,
            gate=gate,
            model=PackagedModel(
                version=manifest.version,
                sha256=onnx_sha,
                size_bytes=len(onnx_bytes),
                manifest_sha256=sha256_file(serving_dir / MANIFEST_FILE),
            ),
            bento=bento,
            predictions_match_evaluate=bool(np.allclose(p_pipeline, _evaluated(paths, contract, test), atol=1e-9)),
            graphs={name: PackagedGraph.of(r) for name, r in graphs.reports.items()},
            **{k: v for k, v in _task_fields(contract).items() if k != "unit"},
        )
        write_json(report_path, report.as_json())
    write_run_record(paths.runs, "package", _run_fields(graphs.reports, bento, build_seconds), started=started)
    log.info(
        "packaged %s (%s): max |Δ| %.2g, %s flips, single-row p50 %.0f µs, bento %s",
        manifest.version,
        task,
        parity.max_abs_diff,
        getattr(parity, "label_flips", "no"),
        graphs.reports[MODEL_FILE].latency_single_row.p50_us,
        bento.tag,
    )


TaskMetrics = EvaluationMetrics | MulticlassMetrics | RegressionMetrics


def _read_metrics(paths: PathsParams, task: str) -> TaskMetrics:
    hint = "run the evaluate stage"
    if task == "regression":
        return read_artefact(paths.metrics, RegressionMetrics, hint=hint)
    if task == "multiclass":
        return read_artefact(paths.metrics, MulticlassMetrics, hint=hint)
    return read_artefact(paths.metrics, EvaluationMetrics, hint=hint)


def _test_auc(metrics: TaskMetrics) -> float | None:
    """The manifest's ``test_roc_auc``: binary ROC-AUC, multiclass macro one-vs-rest ROC-AUC, regression none."""
    if isinstance(metrics, RegressionMetrics):
        return None
    return metrics.roc_auc if isinstance(metrics, EvaluationMetrics) else metrics.roc_auc_ovr


def _headline(metrics: TaskMetrics) -> dict[str, str]:
    """The bento's score label: binary ``test_roc_auc`` (as before), multiclass ``test_log_loss``, regression
    ``test_rmse``."""
    if isinstance(metrics, EvaluationMetrics):
        return {"test_roc_auc": f"{metrics.roc_auc:.4f}"}
    if isinstance(metrics, MulticlassMetrics):
        return {"test_log_loss": f"{metrics.log_loss:.4f}"}
    return {"test_rmse": f"{metrics.rmse:.6g}"}


def _task_fields(contract: DataContract) -> dict[str, Any]:
    """The manifest's task fields: none for binary (its bytes unchanged), else the task, classes and unit."""
    target = contract.target
    if target.task == "binary":
        return {}
    if target.task == "multiclass":
        return {"task": "multiclass", "classes": target.labels}
    return {"task": "regression", "unit": target.unit}


def _bento(
    serving_dir: Path, bento_path: Path, paths: PathsParams, *, labels: dict[str, str], version: str, build: bool
) -> BentoRecord:
    """Build and publish the bento, its archive at ``bento_path``; or a placeholder file when ``build`` is off."""
    if not build:
        bento_path.write_text("bento not built (package.build_bento is false)\n")
        return BentoRecord(tag=None, labels=labels)
    template, receipt = BENTOFILE_TEMPLATE, Path(paths.bento_receipt)
    tag = build_bento(serving_dir, bento_path, template=template, labels=labels, version=version, receipt=receipt)
    return BentoRecord(tag=tag, labels=labels, archive_sha256=sha256_file(bento_path))


def _run_fields(reports: dict[str, GraphReport], bento: BentoRecord, build_seconds: float) -> dict[str, Any]:
    """The package run record: each graph's measured speed, the bento's build time and the store it went to."""
    speed = {"latency_single_row", "batch_rows_per_second"}
    return {
        "graphs": {name: r.model_dump(mode="json", include=speed) for name, r in reports.items()},
        "bento": {
            "tag": bento.tag,
            "build_seconds": round(build_seconds, 2),
            "bentoml_home": os.environ.get("BENTOML_HOME"),
        },
    }


def _evaluated(paths: PathsParams, contract: DataContract, test: Any) -> np.ndarray:
    """evaluate's scores of the test split in ``test``'s row order: binary ``probability``; regression
    ``prediction``; multiclass ``probability__<class>`` in class order."""
    import pandas as pd

    frame = pd.read_parquet(paths.predictions)
    task = contract.target.task
    if task == "binary":
        probabilities: np.ndarray = frame["probability"].to_numpy()
        return probabilities
    frame = frame.set_index(contract.key_column).loc[test[contract.key_column]]
    columns = ["prediction"] if task == "regression" else [f"probability__{c}" for c in contract.target.labels]
    scores: np.ndarray = frame[columns].to_numpy(dtype=np.float64)
    return scores[:, 0] if task == "regression" else scores


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
