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
from pathlib import Path

from tabrepro.batch.cli import add_cluster_options, add_score_parser, cluster_client
from tabrepro.config.compose import write_params
from tabrepro.errors import EXIT_BAD_INPUT, EXIT_UNEXPECTED, ConfigError, TabreproError, configure_logging
from tabrepro.io.staging import check_output_path, check_report_paths
from tabrepro.outcomes.cli import add_outcomes_parser
from tabrepro.reporting.report import make_report

log = logging.getLogger(__name__)


_EXIT_UNEXPECTED_LINE = "3 an unexpected failure (a bug, or a fault of the machine), with its traceback."

_PARAMS_EPILOG = f"""\
exit status: 0 written; 2 a bad override (an unknown option of a group: its options are listed; a key that does
not exist; a syntax error), a missing --conf folder, or an --output that is a folder or cannot be written, with
Hydra's explanation and nothing written; {_EXIT_UNEXPECTED_LINE}
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
once it is back); {_EXIT_UNEXPECTED_LINE}
"""

_REPORT_EPILOG = f"""\
exit status: 0 report printed, no --fail-on tolerance broken; 1 a --fail-on tolerance is broken (the verdict);
2 bad input: an unknown --base revision, a malformed --fail-on, not run from a DVC repository's root, an --output
that is a folder or cannot be written (checked first), a dvc command that fails; {_EXIT_UNEXPECTED_LINE}
"""


def _cmd_report(args: argparse.Namespace) -> int:
    """Print the Markdown report (and write --output); exit 1 when a --fail-on tolerance is broken."""
    report = make_report(base=args.base, fail_on=args.fail_on, plots_dir=args.plots_dir, output=args.output)
    sys.stdout.write(report.markdown)
    for v in report.broken:
        log.error("--fail-on %s broken: %s %s -> %s", v.tolerance.spec, v.key, v.old, v.new)
    return 1 if report.broken else 0


def _add_report_parser(commands: argparse._SubParsersAction) -> None:
    report = commands.add_parser(
        "report",
        help="Markdown report of what the workspace changed against a git revision",
        epilog=_REPORT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
    return 1 if report["decision"]["retrain"] else 0


_DRIFT_EPILOG = f"""\
exit status: 0 no retrain needed, 1 retrain (a drift threshold in params.yaml `drift:` was crossed),
2 bad input (unreadable file, missing columns, corrupt log line, too few rows, reference of another contract,
a serving folder that is missing, truncated or altered, a --report or --figures path that cannot be written:
checked first), {_EXIT_UNEXPECTED_LINE}

A scheduler can chain it:   tabrepro drift --current new.csv || dvc exp run
(`||` also fires on exit 2; to retrain on drift only:   tabrepro drift --current new.csv; [ $? -eq 1 ] && dvc exp run)
"""


def _add_drift_parser(commands: argparse._SubParsersAction) -> None:
    drift = commands.add_parser(
        "drift",
        help="compare new data or the service's prediction log with the training data; exit 1 if retrain is due",
        description="PSI and KS / chi-squared per feature, unknown levels, missing rates and the drift of the\n"
        "packaged model's probabilities, against the training reference and the serving manifest.",
        epilog=_DRIFT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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


_CONTRACT_DRAFT_EPILOG = f"""\
writes a starting point for conf/data/<name>.yaml: each column's type, levels, observed range (rounded outward),
boolean and missing-value tokens, the id candidates, the columns it leaves out and why, and a "DECIDE:" comment on
every column the data cannot settle. Review it before use.

exit status: 0 written; 2 bad input, nothing written: an unreadable or empty table, a --target that is not a
column or has not exactly two labels, a --positive that is not one of them, an --output that exists (without
--force) or cannot be written; {_EXIT_UNEXPECTED_LINE}
"""


def _cmd_contract_draft(args: argparse.Namespace) -> int:
    """Draft a data contract from a raw table and write it, refusing to overwrite one unless --force."""
    from tabrepro.contract.draft import check_name, default_name, draft_contract
    from tabrepro.contract.draft_yaml import render_draft
    from tabrepro.io.raw import read_raw
    from tabrepro.io.staging import OutputPathError, staged_outputs

    name = check_name(args.name) if args.name else default_name(str(args.table))
    output = check_output_path(args.output or Path("conf/data") / f"{name}.yaml", option="--output")
    if output.exists() and not args.force:
        raise OutputPathError(f"--output {output}: exists; pass --force to overwrite it")
    fmt = {".csv": "csv", ".parquet": "parquet"}.get(args.table.suffix.lower())
    if fmt is None:
        raise ConfigError(f"{args.table}: expected a .csv or .parquet file")
    raw = read_raw(args.table, fmt=fmt)
    draft = draft_contract(
        raw, target=args.target, positive=args.positive, name=name, source=args.table.as_posix(), fmt=fmt
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    with staged_outputs(output) as (staged,):
        staged.write_text(render_draft(draft), encoding="utf-8")
    log.info(
        "wrote %s: %d features, %d left out; review its DECIDE comments",
        output,
        len(draft.features),
        len(draft.ignored),
    )
    return 0


def _add_contract_parser(commands: argparse._SubParsersAction) -> None:
    contract = commands.add_parser("contract", help="data contracts (conf/data/<name>.yaml)")
    draft = contract.add_subparsers(dest="contract_command", required=True).add_parser(
        "draft",
        help="draft a data contract from a raw table, for a human to review",
        epilog=_CONTRACT_DRAFT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    draft.add_argument("table", type=Path, help="raw table (.csv or .parquet), e.g. data/raw/my_table.csv")
    draft.add_argument("--target", required=True, help="the target column")
    draft.add_argument("--positive", required=True, help="the target's positive label, as written in the data")
    draft.add_argument("--name", help="contract name (default: the file's stem)")
    draft.add_argument("--output", type=Path, help="file to write (default: conf/data/<name>.yaml)")
    draft.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    draft.set_defaults(func=_cmd_contract_draft)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tabrepro", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    params = commands.add_parser(
        "params",
        help="compose conf/ into params.yaml (as `dvc exp run` does)",
        epilog=_PARAMS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    params.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. model=logreg split.seed=7")
    params.add_argument("--conf", default="conf", help="Hydra config folder (default: conf)")
    params.add_argument("--output", default="params.yaml", help="file to write (default: params.yaml)")
    params.set_defaults(func=_cmd_params)
    worker = commands.add_parser(
        "tune-worker",
        help="run extra Optuna trials for the tune stage's shared study",
        epilog=_TUNE_WORKER_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    _add_report_parser(commands)
    _add_drift_parser(commands)
    add_score_parser(commands)
    _add_contract_parser(commands)
    add_outcomes_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    configure_logging(force=False)
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except TabreproError as exc:
        log.error("%s", exc)
        code = EXIT_BAD_INPUT
    except Exception:
        log.exception("tabrepro %s failed unexpectedly (a bug, or a fault of the machine)", args.command)
        code = EXIT_UNEXPECTED
    sys.exit(code)


if __name__ == "__main__":
    main()
