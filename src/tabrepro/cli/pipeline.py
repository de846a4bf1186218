"""``tabrepro params`` (compose conf/ into params.yaml) and ``tabrepro tune-worker`` (extra Optuna trials)."""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

from tabrepro.cli.help import EXIT_UNEXPECTED_LINE, add_command
from tabrepro.config.compose import write_params
from tabrepro.io.staging import check_output_path

if TYPE_CHECKING:
    from tabrepro.cli.help import Commands

log = logging.getLogger(__name__)

_PARAMS_EPILOG = f"""\
exit status: 0 written; 2 a bad override (an unknown option of a group: its options are listed; a key that does
not exist; a syntax error), a missing --conf folder, or an --output that is a folder or cannot be written, with
Hydra's explanation and nothing written; {EXIT_UNEXPECTED_LINE}
"""


def _cmd_params(args: argparse.Namespace) -> int:
    check_output_path(args.output, option="--output")
    write_params(args.output, args.conf, args.overrides)
    log.info(
        "wrote %s from %s%s",
        args.output,
        args.conf,
        f" with overrides {args.overrides}" if args.overrides else "",
    )
    return 0


def _cmd_tune_worker(args: argparse.Namespace) -> int:
    """Join the tune stage's studies in the database named by ``tune.storage`` and run trials until each is done."""
    from tabrepro.tune_worker import run_tune_worker

    return run_tune_worker(overrides=args.overrides, conf=args.conf, params_file=args.params, worker=args.worker)


_TUNE_WORKER_EPILOG = f"""\
A worker on another machine (same commit, `dvc pull featurize`) passes the overrides the experiment was run with,
e.g. tabrepro tune-worker --worker 1 'tune.storage="postgresql+psycopg://optuna@db-host:5432/optuna"' tune.n_trials=200
(conf/ is composed with them, as `dvc exp run -S` does); without overrides it reads --params (default params.yaml).

exit status: 0 the shared study reached tune.n_trials finished trials; 2 bad input, nothing run: params or
hyper-parameters out of range (checked before any trial), tune.storage null or not openable, the train features
missing (run `dvc repro featurize`), or tune.timeout ran out before tune.n_trials trials finished (a search cut
short by time is not reproducible); also 2 when the database fails mid-search (its finished trials are kept: rerun
once it is back); {EXIT_UNEXPECTED_LINE}
"""


def add_params_parser(commands: Commands) -> None:
    params = add_command(
        commands, "params", help="compose conf/ into params.yaml (as `dvc exp run` does)", epilog=_PARAMS_EPILOG
    )
    params.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. model=logreg split.seed=7")
    params.add_argument("--conf", default="conf", help="Hydra config folder (default: conf)")
    params.add_argument("--output", default="params.yaml", help="file to write (default: params.yaml)")
    params.set_defaults(func=_cmd_params)


def add_tune_worker_parser(commands: Commands) -> None:
    worker = add_command(
        commands,
        "tune-worker",
        help="run extra Optuna trials for the tune stage's shared study",
        epilog=_TUNE_WORKER_EPILOG,
    )
    worker.add_argument(
        "overrides",
        nargs="*",
        help="the Hydra overrides the experiment was run with (dvc exp run -S ...): conf/ is composed with them, "
        "params.yaml is not read",
    )
    worker.add_argument("--conf", default="conf", help="Hydra config folder, with overrides (default: conf)")
    worker.add_argument("--params", help="params file, without overrides (default: params.yaml)")
    worker.add_argument("--worker", type=int, default=1, help="worker number >= 1; offsets the sampler's seed")
    worker.set_defaults(func=_cmd_tune_worker)
