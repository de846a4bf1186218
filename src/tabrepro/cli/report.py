"""``tabrepro report``: the Markdown report of what the workspace changed against a git revision."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tabrepro.cli.help import EXIT_UNEXPECTED_LINE, add_command
from tabrepro.reporting.report import make_report

if TYPE_CHECKING:
    from tabrepro.cli.help import Commands

log = logging.getLogger(__name__)

_REPORT_EPILOG = f"""\
exit status: 0 report printed, no --fail-on tolerance broken; 1 a --fail-on tolerance is broken (the verdict);
2 bad input: an unknown --base revision, a malformed --fail-on, not run from a DVC repository's root, an --output
that is a folder or cannot be written (checked first), a dvc command that fails; {EXIT_UNEXPECTED_LINE}
"""


def _cmd_report(args: argparse.Namespace) -> int:
    """Print the Markdown report (and write --output); exit 1 when a --fail-on tolerance is broken."""
    report = make_report(base=args.base, fail_on=args.fail_on, plots_dir=args.plots_dir, output=args.output)
    sys.stdout.write(report.markdown)
    for v in report.broken:
        log.error("--fail-on %s broken: %s %s -> %s", v.tolerance.spec, v.key, v.old, v.new)
    return 1 if report.broken else 0


def add_report_parser(commands: Commands) -> None:
    report = add_command(
        commands,
        "report",
        help="Markdown report of what the workspace changed against a git revision",
        epilog=_REPORT_EPILOG,
    )
    report.add_argument("--base", required=True, help="git revision to compare with, e.g. main or origin/main")
    report.add_argument(
        "--fail-on",
        action="extend",
        nargs="+",
        default=[],
        metavar="KEY:TOL",
        help="exit 1 if metric KEY moves past TOL: negative = may drop by |TOL| (roc_auc:-0.005), "
        "positive = may rise by TOL (brier:+0.002); unsigned = by the metric's direction (rmse:0.5 may rise by 0.5, "
        "a sign against it is refused); KEY may be prefixed with its file (reports/metrics.json:roc_auc)",
    )
    report.add_argument("--output", type=Path, help="also write the report to this file")
    report.add_argument(
        "--plots-dir", type=Path, default=Path("dvc_plots"), help="where `dvc plots diff` writes (default: dvc_plots)"
    )
    report.set_defaults(func=_cmd_report)
