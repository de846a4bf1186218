"""``tabrepro``: the commands that are not pipeline stages.

Every command exits 0 when done, 1 only for its documented verdict (``drift``: retrain; ``report``: a tolerance
broke), 2 for bad input (a ``TabreproError``: one message naming the key, path or option, no traceback; output
options are checked before any work) and 3 for an unexpected failure (logged with its traceback).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from tabrepro.batch.cli import add_score_parser
from tabrepro.cli.contract import add_contract_parser
from tabrepro.cli.drift import add_drift_parser
from tabrepro.cli.pipeline import add_params_parser, add_tune_worker_parser
from tabrepro.cli.report import add_report_parser
from tabrepro.errors import configure_logging, exit_code_of
from tabrepro.outcomes.cli import add_outcomes_parser

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tabrepro", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for add in (
        add_params_parser,
        add_tune_worker_parser,
        add_report_parser,
        add_drift_parser,
        add_score_parser,
        add_contract_parser,
        add_outcomes_parser,
    ):
        add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    configure_logging(force=False)
    args = build_parser().parse_args(argv)
    sys.exit(exit_code_of(lambda: args.func(args), what=f"tabrepro {args.command}", log=log))
