"""``tabrepro``: the commands that are not pipeline stages."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from tabrepro.config import write_params
from tabrepro.params import ConfigError
from tabrepro.report import make_report
from tabrepro.tolerances import ReportError
from tabrepro.validation import DataError

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


def _cmd_tune_worker(args: argparse.Namespace) -> int:
    """Join the tune stage's study in the database named by ``tune.storage`` and run trials until it is done."""
    import optuna
    import pandas as pd

    from tabrepro.contract import load_contract
    from tabrepro.features import split_xy
    from tabrepro.params import ModelParams, PathsParams, TrainParams, TuneParams, load_params, read_section, read_seed
    from tabrepro.search import check_search, open_storage, run_search
    from tabrepro.stages.tune import study_name_for

    params = load_params(args.params)
    paths, tune = read_section(params, "paths", PathsParams), read_section(params, "tune", TuneParams)
    model, contract = read_section(params, "model", ModelParams), load_contract(params.get("data"))
    if tune.storage is None or tune.n_trials == 0:
        log.error("tune.storage is null or tune.n_trials is 0: workers share a study only through a database")
        return 2
    check_search(model, tune)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    x, y = split_xy(pd.read_parquet(f"{paths.features}/train.parquet"), contract)
    result, _ = run_search(
        model,
        tune,
        x,
        y,
        storage=open_storage(tune, ""),
        study_name=study_name_for(contract, model, tune),
        seed=read_seed(params),
        n_jobs=read_section(params, "train", TrainParams).n_jobs,
        worker=args.worker,
    )
    log.info("worker %d done: study best CV ROC-AUC %.4f", args.worker, result.cv_mean)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    """Print the Markdown report (and write --output); exit 1 when a --fail-on tolerance is broken."""
    report = make_report(base=args.base, fail_on=args.fail_on, plots_dir=args.plots_dir, output=args.output)
    sys.stdout.write(report.markdown)
    for v in report.broken:
        log.error("--fail-on %s broken: %s %s -> %s", v.tolerance.spec, v.key, v.old, v.new)
    return 1 if report.broken else 0


def _add_report_parser(commands: argparse._SubParsersAction) -> None:
    report = commands.add_parser("report", help="Markdown report of what the workspace changed against a git revision")
    report.add_argument("--base", required=True, help="git revision to compare with, e.g. main or origin/main")
    report.add_argument(
        "--fail-on",
        action="extend",
        nargs="+",
        default=[],
        metavar="KEY:TOL",
        help="exit 1 if metric KEY moves past TOL: negative = may drop by |TOL| (roc_auc:-0.005), "
        "positive = may rise by TOL (brier:+0.002); KEY may be prefixed with its file (reports/metrics.json:roc_auc)",
    )
    report.add_argument("--output", type=Path, help="also write the report to this file")
    report.add_argument(
        "--plots-dir", type=Path, default=Path("dvc_plots"), help="where `dvc plots diff` writes (default: dvc_plots)"
    )
    report.set_defaults(func=_cmd_report)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tabrepro", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    params = commands.add_parser("params", help="compose conf/ into params.yaml (as `dvc exp run` does)")
    params.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. model=logreg split.seed=7")
    params.add_argument("--conf", default="conf", help="Hydra config folder (default: conf)")
    params.add_argument("--output", default="params.yaml", help="file to write (default: params.yaml)")
    params.set_defaults(func=_cmd_params)
    worker = commands.add_parser("tune-worker", help="run extra Optuna trials for the tune stage's shared study")
    worker.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    worker.add_argument("--worker", type=int, default=1, help="worker number >= 1; offsets the sampler's seed")
    worker.set_defaults(func=_cmd_tune_worker)
    _add_report_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        sys.exit(args.func(args))
    except (ConfigError, DataError, ReportError) as exc:
        log.error("%s", exc)
        sys.exit(2)


if __name__ == "__main__":
    main()
