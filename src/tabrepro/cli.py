"""``tabrepro``: the commands that are not pipeline stages."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from tabrepro.config import write_params

log = logging.getLogger(__name__)


def _cmd_params(args: argparse.Namespace) -> int:
    write_params(args.output, args.conf, args.overrides)
    log.info(
        "wrote %s from %s%s",
        args.output,
        args.conf,
        f" with overrides {args.overrides}" if args.overrides else "",
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tabrepro", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    params = commands.add_parser("params", help="compose conf/ into params.yaml (as `dvc exp run` does)")
    params.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. model=logreg split.seed=7")
    params.add_argument("--conf", default="conf", help="Hydra config folder (default: conf)")
    params.add_argument("--output", default="params.yaml", help="file to write (default: params.yaml)")
    params.set_defaults(func=_cmd_params)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    sys.exit(args.func(args))


if __name__ == "__main__":
    main()
