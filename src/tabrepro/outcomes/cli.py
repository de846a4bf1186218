"""``tabrepro outcomes``: labels in, joined to the predictions, live performance, concept drift, A/B verdict."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabrepro.errors import DataError

if TYPE_CHECKING:
    from tabrepro.contract.spec import DataContract
    from tabrepro.outcomes.join import JoinResult
    from tabrepro.outcomes.labels import CleanLabels
    from tabrepro.outcomes.report import Reference
    from tabrepro.outcomes.settings import OutcomesParams

EXIT_PROMOTE, EXIT_ROLLBACK = 10, 11

_EPILOG = """\
exit status: 0 no retrain needed (also: too few labels yet; the summary says how many more); 1 retrain (the
primary's live metric fell below the test split's by more than outcomes.tolerance, its CI excluding it);
with --ab the A/B verdict instead: 0 continue (fewer labels than planned) or no candidate, 10 promote,
11 rollback; 2 bad input (a contract whose task is not binary: outcomes judge binary models only, refused before
anything is read; a label that breaks the contract, named by file, line and value; an unreadable
prediction log; a missing reference; an output that cannot be written: checked first); 3 an unexpected failure.

Chain it:   tabrepro outcomes --labels labels/ --predictions logs/; [ $? -eq 1 ] && dvc exp run
A/B:        tabrepro outcomes --labels labels/ --predictions logs/ --ab; case $? in 10) promote;; 11) rollback;; esac
"""

_ACTIONS = {
    "promote": "promote: serve the candidate alone, e.g. TABREPRO_ROLLOUT_MODE=off "
    "TABREPRO_SERVING_DIR=<the candidate's serving folder> make serve (or `bentoml serve tabrepro:<its tag>`)",
    "rollback": "rollback: serve the primary alone: TABREPRO_ROLLOUT_MODE=off make serve",
}


def add_outcomes_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from tabrepro.batch.cli import add_cluster_options

    parser = commands.add_parser(
        "outcomes",
        help="join labels to the predictions: live performance, concept drift (exit 1: retrain), A/B verdicts",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    arg = parser.add_argument
    arg("--labels", type=Path, required=True, metavar="FILE_OR_DIR", help="label files (.csv, .parquet; a folder)")
    logs = "the service's prediction log (.jsonl, .jsonl.N, a folder of them) or `tabrepro score` outputs"
    arg("--predictions", type=Path, required=True, metavar="FILE_OR_DIR", help=logs)
    arg("--scored-at", type=datetime.fromisoformat, help="time of score outputs (default: each file's mtime)")
    arg("--reference", type=Path, help="test-split metrics (default: params paths.metrics)")
    arg("--report", type=Path, default=Path("reports/outcomes/outcomes.json"), help="JSON report (%(default)s)")
    arg("--figures", type=Path, help="PNG folder, replaced on each run (default: figures/ beside --report)")
    arg("--ab", action="store_true", help="exit with the A/B verdict (0 continue, 10 promote, 11 rollback)")
    arg("--params", default="params.yaml", help="params file (default: params.yaml)")
    add_cluster_options(parser, what="read the prediction files, one partition per file")
    parser.set_defaults(func=run_outcomes)


def run_outcomes(args: argparse.Namespace) -> int:
    from tabrepro.batch.cli import cluster_client
    from tabrepro.config.params import PathsParams, load_params, read_section
    from tabrepro.contract.spec import load_contract
    from tabrepro.io.staging import check_report_paths
    from tabrepro.outcomes.labels import clean_labels, read_labels, require_binary
    from tabrepro.outcomes.report import build_report, format_summary, write_outputs
    from tabrepro.outcomes.settings import OutcomesParams

    params = load_params(args.params)
    contract = load_contract(params.get("data"))
    require_binary(contract)  # before any work: outcomes judge binary models only
    figures_dir = check_report_paths(args.report, args.figures)
    settings, paths = read_section(params, "outcomes", OutcomesParams), read_section(params, "paths", PathsParams)
    reference = read_reference(args.reference or Path(paths.metrics), metric=settings.metric)
    clean = clean_labels(read_labels(args.labels, contract))
    with cluster_client(args) as client:
        result = _join(args, contract, clean, settings, client)
    report = write_outputs(build_report(result, settings, reference), args.report, figures_dir)
    sys.stdout.write(format_summary(report, args.report))
    if args.ab:
        if report.ab_verdict in _ACTIONS:
            sys.stdout.write(_ACTIONS[report.ab_verdict] + "\n")
        return {"promote": EXIT_PROMOTE, "rollback": EXIT_ROLLBACK}.get(report.ab_verdict, 0)
    return 1 if report.concept.retrain else 0


def _join(
    args: argparse.Namespace, contract: DataContract, clean: CleanLabels, settings: OutcomesParams, client: Any
) -> JoinResult:
    import pandas as pd

    from tabrepro.outcomes.join import join_outcomes, join_outcomes_dask
    from tabrepro.outcomes.predictions import prediction_files, read_predictions

    kind, files = prediction_files(args.predictions)
    days, deadline = settings.window_days, settings.label_deadline_days
    if client is not None:
        return join_outcomes_dask(
            kind, files, contract, clean, days=days, deadline=deadline, client=client, scored_at=args.scored_at
        )
    frames = [read_predictions(kind, path, contract, scored_at=args.scored_at) for path in files]
    return join_outcomes(pd.concat(frames, ignore_index=True), clean, days=days, deadline=deadline)


def read_reference(path: Path, *, metric: str) -> Reference:
    """The test split's metrics from ``evaluate``'s ``metrics.json``."""
    from tabrepro.outcomes.report import Reference as Found

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(
            f"{path}: cannot read the test-split metrics ({exc}); run `dvc repro evaluate` or `dvc pull`"
        ) from None
    names = [n for n in ("roc_auc", "log_loss", "ece") if isinstance(data.get(n), int | float)]
    if metric not in names or not isinstance(data.get("positive_rate"), int | float):
        raise DataError(f"{path}: expected numbers {metric!r} and 'positive_rate' (evaluate's metrics.json)")
    return Found(source=str(path), metrics={n: float(data[n]) for n in names}, positive_rate=data["positive_rate"])
