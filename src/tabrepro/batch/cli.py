"""``tabrepro score``: the command line of batch scoring (``tabrepro.batch.scoring``, on Dask
``tabrepro.batch.distributed``), and the cluster options that ``tabrepro drift`` shares."""

from __future__ import annotations

import argparse
import glob
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabrepro.config.params import load_params
from tabrepro.errors import EXIT_BAD_INPUT, EXIT_OK, DataError
from tabrepro.io.staging import check_output_path, check_report_paths, write_json

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa
    from distributed import Client

log = logging.getLogger(__name__)

_FALLBACK_SERVING = Path("models/serving")

_EPILOG = """\
output columns: the contract's id column (or, when it declares none, `row`: each row's line (CSV) or row
(Parquet) number in the input), the task's columns (evaluate's predictions file's), model_version. The task is
the packaged contract's: binary probability, label (probability >= the packaged threshold, 1 or 0); multiclass
label (the most probable class) and probability__<class> per class in the contract's order; regression
prediction.
Refused rows go to the rejects file (line or row number, id, reason naming column and value).
Both files are written to <file>.partial and renamed only when the whole input has been scored.

on Dask (--workers N for a local cluster, or --scheduler ADDRESS): --input may be a folder or a quoted glob of
files of one kind; each file is one task, scored as alone (ids are checked for repeats within a file). --output
is a folder: part-<i>.parquet for the i-th input file (sorted by path) and _parts.json (which file, how many
rows); the rejects file gets a first column `file`. Parts are written in <output>.partial and the folder is
renamed into place only when every file has its part, so a failed run keeps the previous folder and a task run
twice (a lost worker) cannot write a row twice. Workers must see the paths (one machine or a shared file system).
--drift-report: each worker tallies its file, the tallies are merged exactly (the one-process numbers).

exit status: 0 scored (even with rejects: see the summary); 2 bad input, with one message naming the file, option or
key (unreadable or empty input, a CSV line that breaks the one-row-per-line rule, missing or repeated columns, a
serving folder that is missing, truncated or altered, an output option that names a folder, a device or an
unwritable place, a bad params file), nothing written; also 2 when every row was rejected (both files are written:
the rejects say why) and when an output cannot be written (a full disk: the .partial files are removed); 3 an
unexpected failure (a bug, or a fault of the machine), with its traceback.
"""


def add_score_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    score = commands.add_parser(
        "score",
        help="score a raw CSV or Parquet file with the packaged ONNX model, setting refused rows aside",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    score.add_argument("--input", type=Path, required=True, help="raw table (.csv or .parquet)")
    score.add_argument("--output", type=Path, required=True, help="scores to write (.csv or .parquet)")
    score.add_argument("--rejects", type=Path, help="refused rows (default: <output stem>.rejects.csv next to it)")
    score.add_argument(
        "--serving-dir",
        type=Path,
        help=f"packaged model (default: --params paths.serving, else {_FALLBACK_SERVING})",
    )
    score.add_argument("--chunk-rows", type=_positive, default=100_000, help="rows per chunk (default: 100000)")
    score.add_argument("--summary", type=Path, help="also write the run's summary as JSON here")
    score.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    score.add_argument(
        "--drift-report",
        type=Path,
        help="also write `tabrepro drift`'s report of the input against the training reference (figures next to it)",
    )
    score.add_argument(
        "--params",
        default="params.yaml",
        help="params file: paths.serving, and drift thresholds (default: params.yaml)",
    )
    score.add_argument(
        "--threads",
        type=_positive,
        help="intra-op threads of the ONNX session (default: every core in one process, 1 per Dask worker)",
    )
    score.add_argument(
        "--providers",
        nargs="+",
        metavar="PROVIDER",
        help="ONNX Runtime execution providers, first preferred (default: the manifest's serve.providers); "
        "CUDAExecutionProvider scores with the tensor graph, falling back to the CPU (with a warning) without a GPU",
    )
    add_cluster_options(score, what="score a folder or glob of files in parallel, one task per file")
    score.set_defaults(func=_cmd_score)


def add_cluster_options(parser: argparse.ArgumentParser, *, what: str) -> None:
    """``--workers N`` (a local Dask cluster) or ``--scheduler ADDRESS`` (an existing one), and ``--memory-limit``."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--workers", type=_positive, help=f"on a local Dask cluster of N workers: {what}")
    group.add_argument("--scheduler", metavar="ADDRESS", help=f"on the Dask scheduler at ADDRESS (tcp://...): {what}")
    parser.add_argument(
        "--memory-limit", default="auto", help="memory limit per local worker, e.g. 1GiB (default: auto)"
    )


@contextmanager
def cluster_client(args: argparse.Namespace) -> Iterator[Client | None]:
    """The Dask client that ``--workers`` / ``--scheduler`` ask for, or None (one process)."""
    if args.workers is None and args.scheduler is None:
        yield None
        return
    with dask_client(args) as client:
        yield client


@contextmanager
def dask_client(args: argparse.Namespace) -> Iterator[Client]:
    """The Dask client of ``--scheduler``, or of a local cluster of ``--workers`` (one of them is given)."""
    from tabrepro.batch.distributed import open_client

    with open_client(scheduler=args.scheduler, workers=args.workers, memory_limit=args.memory_limit) as client:
        yield client


def _cmd_score(args: argparse.Namespace) -> int:
    """Score ``--input``; every ``TabreproError`` (data, serving folder, params, paths) is exit 2 in ``main()``."""
    from tabrepro.batch.scoring import score_file

    if args.workers is not None or args.scheduler is not None:
        if args.providers:
            raise DataError("--providers: not taken on Dask (--workers/--scheduler): workers use serve.providers")
        return _score_on_dask(args)
    if args.input.is_dir() or (not args.input.exists() and glob.has_magic(str(args.input))):
        raise DataError(f"--input {args.input}: a folder or glob is scored on Dask; add --workers N or --scheduler")
    _check_outputs(args)
    serving_dir = args.serving_dir or _default_serving_dir(Path(args.params))
    drift = _DriftFeed(args, serving_dir) if args.drift_report else None
    summary = score_file(
        args.input,
        args.output,
        serving_dir=serving_dir,
        rejects_path=args.rejects,
        chunk_rows=args.chunk_rows,
        progress=not args.no_progress,
        threads=args.threads,
        on_chunk=drift.update if drift else None,
        providers=args.providers,
    )
    log.info("%s", summary.describe())
    if args.summary:
        write_json(args.summary, summary.to_dict())
    if drift:
        drift.write(summary)
    return _verdict(summary)


def _score_on_dask(args: argparse.Namespace) -> int:
    from tabrepro.batch.distributed import score_on_dask

    check_output_path(args.output, option="--output", kind="folder")
    rejects = args.rejects or args.output.with_name(f"{args.output.name}.rejects.csv")
    check_output_path(rejects, option="--rejects")
    if args.summary:
        check_output_path(args.summary, option="--summary")
    _check_drift_outputs(args)
    serving_dir = args.serving_dir or _default_serving_dir(Path(args.params))
    drift = _DriftFeed(args, serving_dir) if args.drift_report else None
    with dask_client(args) as client:
        summary = score_on_dask(
            args.input,
            args.output,
            serving_dir=serving_dir,
            client=client,
            rejects_path=rejects,
            chunk_rows=args.chunk_rows,
            threads=args.threads or 1,
            drift=drift.accumulator if drift else None,
        )
    log.info("%s", summary.describe())
    if args.summary:
        write_json(args.summary, summary.to_dict())
    if drift:
        drift.write(summary)
    return _verdict(summary)


def _verdict(summary: Any) -> int:
    """0, or 2 when every row read was rejected: a run that scored nothing is not a success (the files are written,
    the rejects name why)."""
    if summary.rows_read and not summary.rows_scored:
        log.error(
            "every one of the %d rows of %s was rejected; nothing was scored (the reasons are in %s)",
            summary.rows_read,
            summary.input,
            summary.rejects,
        )
        return EXIT_BAD_INPUT
    return EXIT_OK


class _DriftFeed:
    """``--drift-report``: the chunks being scored also feed ``tabrepro drift``'s accumulator (one pass)."""

    def __init__(self, args: argparse.Namespace, serving_dir: Path) -> None:
        from tabrepro.config.params import DriftParams, PathsParams, read_section
        from tabrepro.monitoring.check import open_model, start_drift

        params = load_params(args.params)
        self.params = read_section(params, "drift", DriftParams)
        self.reference = Path(read_section(params, "paths", PathsParams).reference_stats)
        # only the manifest and contract: score_file loads and verifies the model itself
        _, self.manifest, self.contract = open_model(serving_dir, load=False)
        self.accumulator = start_drift(self.reference, self.manifest, self.contract)
        self.report_path: Path = args.drift_report
        self.input = args.input

    def update(self, chunk: pa.Table, probabilities: np.ndarray) -> None:
        self.accumulator.update_text(chunk.to_pandas(), probabilities)

    def write(self, summary: Any) -> None:
        from tabrepro.io.tables import expand_inputs, table_format
        from tabrepro.monitoring.check import finish_drift, format_summary, write_drift_outputs

        inputs = {
            "current": str(self.input),
            "kind": table_format(expand_inputs(self.input)[0], role="input"),
            "scored": summary.rows_scored,
        }
        report = finish_drift(self.accumulator, self.params, inputs, self.reference, self.manifest)
        figures = write_drift_outputs(report, self.report_path, self.report_path.parent / "figures")
        sys.stderr.write(format_summary(report, figures, self.report_path))
        if report.decision.retrain:
            log.warning("drift: retrain recommended (%s); see %s", "; ".join(report.decision.reasons), self.report_path)


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse, before reading anything, an output option that names a folder or a place that cannot be written."""
    from tabrepro.batch.scoring import default_rejects_path

    check_output_path(args.output, option="--output")
    check_output_path(args.rejects or default_rejects_path(args.output), option="--rejects")
    if args.summary:
        check_output_path(args.summary, option="--summary")
    _check_drift_outputs(args)


def _check_drift_outputs(args: argparse.Namespace) -> None:
    if args.drift_report:
        check_report_paths(
            args.drift_report, None, option="--drift-report", figures_option="--drift-report (its figures)"
        )


def _default_serving_dir(params: Path) -> Path:
    """``paths.serving`` of ``--params``; without a params file (scoring outside a repository), models/serving."""
    if not params.exists():
        return _FALLBACK_SERVING
    serving = (load_params(params).get("paths") or {}).get("serving")
    return Path(serving) if serving else _FALLBACK_SERVING


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value
