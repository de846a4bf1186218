"""``tabrepro drift``: new data or the service's prediction log against the training reference."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tabrepro.batch.cli import add_cluster_options, cluster_client
from tabrepro.cli.help import EXIT_UNEXPECTED_LINE, add_command
from tabrepro.io.staging import check_report_paths

if TYPE_CHECKING:
    from tabrepro.cli.help import Commands


def _cmd_drift(args: argparse.Namespace) -> int:
    """Compare --current with the training reference; write the report and figures; exit 1 when retrain is due."""
    from tabrepro.config.params import DriftParams, PathsParams, load_params, read_section
    from tabrepro.monitoring.check import check_drift, format_summary, write_drift_outputs

    figures_dir = check_report_paths(args.report, args.figures)
    params = load_params(args.params)
    drift, paths = read_section(params, "drift", DriftParams), read_section(params, "paths", PathsParams)
    with cluster_client(args) as client:  # None: one process
        report = check_drift(
            args.current,
            reference=args.reference or Path(paths.reference_stats),
            serving_dir=args.serving_dir or Path(paths.serving),
            params=drift,
            role=args.role,
            client=client,
        )
    figures = write_drift_outputs(report, args.report, figures_dir)
    sys.stdout.write(format_summary(report, figures, args.report))
    return 1 if report.decision.retrain else 0


_DRIFT_EPILOG = f"""\
exit status: 0 no retrain needed, 1 retrain (a drift threshold in params.yaml `drift:` was crossed),
2 bad input (unreadable file, missing columns, corrupt log line, too few rows, reference of another contract,
a serving folder that is missing, truncated or altered, a --report or --figures path that cannot be written:
checked first), {EXIT_UNEXPECTED_LINE}

A scheduler can chain it:   tabrepro drift --current new.csv || dvc exp run
(`||` also fires on exit 2; to retrain on drift only:   tabrepro drift --current new.csv; [ $? -eq 1 ] && dvc exp run)
"""


def add_drift_parser(commands: Commands) -> None:
    drift = add_command(
        commands,
        "drift",
        help="compare new data or the service's prediction log with the training data; exit 1 if retrain is due",
        description="PSI and KS / chi-squared per feature, unknown levels, missing rates and the drift of the\n"
        "packaged model's probabilities, against the training reference and the serving manifest.",
        epilog=_DRIFT_EPILOG,
    )
    drift.add_argument(
        "--current",
        type=Path,
        required=True,
        metavar="FILE_OR_DIR",
        help="raw rows (.csv, .parquet; a folder or a quoted glob of them) or the service's prediction log "
        "(.jsonl, .jsonl.N, or a folder of them)",
    )
    drift.add_argument("--reference", type=Path, help="reference statistics (default: params paths.reference_stats)")
    drift.add_argument("--serving-dir", type=Path, help="packaged model (default: params paths.serving)")
    drift.add_argument(
        "--report", type=Path, default=Path("reports/drift/drift.json"), help="JSON report (default: %(default)s)"
    )
    drift.add_argument("--figures", type=Path, help="PNG folder, replaced on each run (default: figures/ by --report)")
    drift.add_argument("--role", default="primary", help="prediction log: which model's lines (default: primary)")
    drift.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    add_cluster_options(drift, what="read the tables of a folder or glob, one task per file")
    drift.set_defaults(func=_cmd_drift)
