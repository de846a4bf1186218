"""package: the whole fitted pipeline as one ONNX graph, proven equal to it on the test split, and a bento.

Refuses, building nothing, a model that failed the promotion gate recorded by ``evaluate`` (unless
``package.override_gate`` gives a reason). Fails, building nothing, when ONNX and scikit-learn disagree beyond
``package.tolerance`` or on any label at the threshold chosen on val. The bento is built offline from the files
this stage has just verified and exported to ``paths.bento``; it is labelled with the git revision, the model's
sha256, the test ROC-AUC and the gate verdict.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from sklearn.pipeline import Pipeline

import tabrepro
from tabrepro.artefacts import ServeParams, sha256_bytes
from tabrepro.config.params import PackageParams, PathsParams, read_section
from tabrepro.contract.spec import DataContract, load_contract
from tabrepro.evaluation.gate import enforce_gate
from tabrepro.io.persistence import load_skops
from tabrepro.io.splits import read_splits
from tabrepro.io.staging import read_json, staged_outputs, write_json
from tabrepro.monitoring.drift import compute_score_reference
from tabrepro.serving.runtime import MANIFEST_FILE, MODEL_FILE, create_session, feeds_from_records
from tabrepro.stages import run_stage
from tabrepro.training.modeling import load_model
from tabrepro.training.onnx_export import check_parity, frame_to_records, single_row_latency, to_onnx

log = logging.getLogger(__name__)

BENTOFILE_TEMPLATE = Path("bentos/bentofile.yaml")


def git_revision() -> str:
    proc = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else "unknown"


def build_bento(serving_dir: Path, destination: Path, *, labels: dict[str, str], version: str) -> str:
    """Build the bento from ``serving_dir`` and the tabrepro package, offline, and export it to ``destination``."""
    os.environ.setdefault("BENTOML_HOME", str(Path.cwd() / ".bentoml"))
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
    import bentoml

    spec = yaml.safe_load(BENTOFILE_TEMPLATE.read_text(encoding="utf-8"))
    spec["labels"] = labels
    spec["python"]["packages"] = [f"{p}=={metadata.version(p)}" for p in spec["python"]["packages"]]
    with tempfile.TemporaryDirectory(prefix="bento-ctx-") as ctx:
        shutil.copytree(
            Path(tabrepro.__file__).parent, Path(ctx) / "tabrepro", ignore=shutil.ignore_patterns("__pycache__")
        )
        shutil.copytree(serving_dir, Path(ctx) / "models" / "serving")
        (Path(ctx) / "bentofile.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
        with contextlib.suppress(bentoml.exceptions.NotFound):  # the same model packaged again: rebuild it
            bentoml.bentos.delete(f"{spec['name']}:{version}")
        bento = bentoml.bentos.build_bentofile(str(Path(ctx) / "bentofile.yaml"), build_ctx=ctx, version=version)
    bentoml.export_bento(str(bento.tag), str(destination))
    return str(bento.tag)


def run(paths: PathsParams, contract: DataContract, package: PackageParams, serve: ServeParams) -> None:
    metrics = read_json(paths.metrics)
    gate = enforce_gate(metrics, override=package.override_gate, source=paths.metrics)
    preprocessor = load_skops(paths.preprocessor)
    model, meta = load_model(paths.model)
    pipeline = Pipeline([("pre", preprocessor), ("model", model)])
    onnx_bytes = to_onnx(pipeline, contract)
    test = read_splits(paths.prepared)["test"]
    records = frame_to_records(test, contract)
    session = create_session(onnx_bytes, ["CPUExecutionProvider"])
    p_onnx = session.run(["probabilities"], feeds_from_records(records, contract))[0][:, 1]
    p_pipeline = pipeline.predict_proba(test)[:, 1]
    parity = check_parity(p_pipeline, p_onnx, threshold=metrics["threshold"], tolerance=package.tolerance)
    latency = single_row_latency(session, records[: package.latency_rows], contract)
    onnx_sha = sha256_bytes(onnx_bytes)
    manifest = {
        "version": f"{contract.name}-{meta['family']}-{onnx_sha[:12]}",
        "onnx_sha256": onnx_sha,
        "model_sha256": meta["sha256"],
        "threshold": metrics["threshold"],
        "test_roc_auc": metrics["roc_auc"],
        "serve": serve.model_dump(mode="json"),
        "contract": contract.model_dump(mode="json"),
        "score_reference": compute_score_reference(p_onnx),
    }
    labels = {
        "git_revision": git_revision(),
        "model_sha256": onnx_sha,
        "test_roc_auc": f"{metrics['roc_auc']:.4f}",
        "gate": "overridden" if gate["overridden"] else "passed",
    }
    with staged_outputs(paths.serving, paths.package_report, paths.bento) as (serving_dir, report_path, bento_path):
        serving_dir.mkdir()
        (serving_dir / MODEL_FILE).write_bytes(onnx_bytes)
        write_json(serving_dir / MANIFEST_FILE, manifest)
        tag = (
            build_bento(serving_dir, bento_path, labels=labels, version=onnx_sha[:12]) if package.build_bento else None
        )
        if tag is None:
            bento_path.write_text("bento not built (package.build_bento is false)\n")
        write_json(
            report_path,
            {
                "parity": parity,
                "gate": gate,
                "model": {"version": manifest["version"], "sha256": onnx_sha, "size_bytes": len(onnx_bytes)},
                "latency_single_row": latency,
                "bento": {"tag": tag, "labels": labels},
                "predictions_match_evaluate": bool(np.allclose(p_pipeline, _evaluated(paths), atol=1e-9)),
            },
        )
    log.info(
        "packaged %s: max |Δp| %.2g, %d flips, single-row p50 %.0f µs, bento %s",
        manifest["version"],
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
