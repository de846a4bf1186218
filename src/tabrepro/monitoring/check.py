"""``tabrepro drift``: current data (a raw table, or the service's prediction log) against the training reference
and the packaged model's test-split scores; a JSON report, a figure per drifted feature and a short summary.

Rows of a table are parsed by the contract but not rejected: unknown levels and tokens that do not parse are
counted, as drift signals. The rows the service would accept are scored with the packaged ONNX model; a log
carries the probabilities the service returned.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabrepro.artefacts import ReferenceStats, ServingManifest, read_artefact
from tabrepro.config.params import DriftParams
from tabrepro.contract.spec import DataContract, load_contract
from tabrepro.errors import DataError
from tabrepro.io.staging import staged_outputs, write_json
from tabrepro.io.tables import expand_inputs
from tabrepro.monitoring.distributed import feed_tables_on_dask
from tabrepro.monitoring.drift import DriftAccumulator
from tabrepro.monitoring.feed import feed_tables
from tabrepro.monitoring.inputs import detect_kind, iter_log, log_files
from tabrepro.monitoring.report import DriftReport, ScoreDrift
from tabrepro.serving.runtime import ServingError, ServingModel

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger(__name__)


def check_drift(
    current: Path,
    *,
    reference: Path,
    serving_dir: Path,
    params: DriftParams,
    role: str = "primary",
    client: Client | None = None,
) -> DriftReport:
    """The drift report of ``current`` (see the README for its layout); a ``DataError`` on bad input.

    With a Dask ``client``, the tables of a folder or glob are read on its workers, one task per file, and their
    accumulators merged: the report is the one-process report, number for number."""
    kind = detect_kind(current)
    if kind == "log" and client is not None:
        raise DataError(f"{current}: a prediction log is read in one process; run without --workers / --scheduler")
    model, manifest, contract = open_model(serving_dir, load=kind != "log")
    accumulator = start_drift(reference, manifest, contract)
    if model is None:
        fed = _feed_log(current, role, manifest, accumulator)
    elif client is None:
        fed = feed_tables(expand_inputs(current), kind, model, accumulator)
    else:
        fed = feed_tables_on_dask(expand_inputs(current), kind, serving_dir, model.sha256, accumulator, client)
    return finish_drift(accumulator, params, {"current": str(current), "kind": kind, **fed}, reference, manifest)


def start_drift(reference: Path, manifest: ServingManifest, contract: DataContract) -> DriftAccumulator:
    """An empty accumulator against the training reference and the packaged model's score reference; feed it with
    ``update(parsed, probabilities, problems=...)`` (``tabrepro drift``, or ``tabrepro score --drift-report``)."""
    return DriftAccumulator(
        read_artefact(reference, ReferenceStats, error=DataError, hint="run `dvc repro featurize`"),
        manifest.score_reference,
        contract,
    )


def finish_drift(
    accumulator: DriftAccumulator,
    params: DriftParams,
    inputs: dict[str, Any],
    reference: Path,
    manifest: ServingManifest,
) -> DriftReport:
    """The report of everything fed to ``accumulator``; ``inputs`` says what was read (current, kind, scored)."""
    result = accumulator.report(params)
    inputs = {**inputs, "rows": result["rows"], "reference": str(reference), "reference_rows": result["reference_rows"]}
    inputs |= {
        "contract": accumulator.contract.name,
        "model": {"version": manifest.version, "onnx_sha256": manifest.onnx_sha256},
    }
    keys = ("decision", "score", "unknown_share", "features")
    return DriftReport.model_validate({"inputs": inputs, "thresholds": params, **{k: result[k] for k in keys}})


def open_model(serving_dir: Path, *, load: bool) -> tuple[ServingModel | None, ServingManifest, DataContract]:
    """The verified packaged model (to score a table) or only its sealed manifest (a log carries its
    probabilities); a DataError saying why when the folder's files are missing or altered."""
    try:
        if load:
            model = ServingModel(serving_dir)
            return model, model.packaged, model.contract
        manifest = ServingModel.read_manifest(serving_dir)
    except (ServingError, OSError) as exc:
        raise DataError(f"serving folder {serving_dir}: {exc}") from None
    return None, manifest, load_contract(manifest.contract, where=f"{serving_dir}/manifest.json: contract")


def _feed_log(path: Path, role: str, manifest: ServingManifest, accumulator: DriftAccumulator) -> dict[str, Any]:
    files, roles, versions = log_files(path), Counter[str](), Counter[str]()
    for parsed, probabilities in iter_log(files, accumulator.contract, role=role, roles=roles, versions=versions):
        accumulator.update(parsed, probabilities)
    if accumulator.rows == 0:
        raise DataError(
            f"{path}: no served lines with role {role!r} in {len(files)} log file(s) "
            f"(served lines per role: {dict(roles) or 'none at all'})"
        )
    if set(versions) != {manifest.version}:
        log.warning(
            "the log holds model version(s) %s, the packaged model is %s: its scores are compared with the packaged "
            "model's test scores all the same",
            dict(versions),
            manifest.version,
        )
    return {
        "files": [str(f) for f in files],
        "role": role,
        "scored": accumulator.rows,
        "model_versions": dict(versions),
    }


def write_drift_outputs(report: DriftReport, report_path: Path, figures_dir: Path) -> list[Path]:
    """The report and one PNG per drifted feature (and for drifted scores); the figures folder is replaced."""
    from tabrepro.monitoring.figures import save_drift_figures

    with staged_outputs(report_path, figures_dir) as (staged_report, staged_figures):
        names = [p.name for p in save_drift_figures(report, staged_figures)]
        drawn = report.model_copy(update={"figures": [str(figures_dir / n) for n in names]})
        write_json(staged_report, drawn.to_json())
    return [figures_dir / n for n in names]


def format_summary(report: DriftReport, figures: list[Path], report_path: Path) -> str:
    """A few lines for people: what was compared, the features that moved, the score drift, the decision."""
    inputs, decision = report.inputs, report.decision
    lines = [
        f"drift of {inputs.current} ({inputs.kind}, {inputs.rows} rows, {inputs.scored} scored) "
        f"against {inputs.reference} ({inputs.reference_rows} training rows)"
    ]
    moved = report.moved()
    if moved:
        lines.append(f"  {'feature':<20} {'type':<12} {'PSI':>7}  {'band':<12} {'test':<5} {'p-value':>9}  flags")
    for name, f in sorted(moved.items(), key=lambda item: -(item[1].psi or 0)):
        lines.append(
            f"  {name:<20} {f.type:<12} {_num(f.psi, '.3f'):>7}  {f.band or '-':<12} {f.test or '-':<5} "
            f"{_num(f.p_value, '.2g'):>9}  " + (", ".join(f.flags) or "-")
        )
    lines.append(f"  {len(report.features) - len(moved)} {'other ' if moved else ''}feature(s) stable")
    score = report.score
    if isinstance(score, ScoreDrift) and score.psi is not None:
        lines.append(
            f"  {score.name}: PSI {score.psi:.3f} ({score.band}), KS p {_num(score.p_value, '.2g')}"
            + (" - drifted" if score.drifted else "")
        )
    lines.append(f"decision: {'RETRAIN (exit 1)' if decision.retrain else 'no retrain needed (exit 0)'}")
    lines += [f"  - {reason}" for reason in decision.reasons]
    lines.append(f"report: {report_path}" + (f"; {len(figures)} figure(s) in {figures[0].parent}" if figures else ""))
    return "\n".join(lines) + "\n"


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)
