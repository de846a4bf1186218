"""``tabrepro score``: the command line of batch scoring (``tabrepro.batch.scoring``)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabrepro.config.params import load_params
from tabrepro.io.staging import check_output_path, write_json

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

log = logging.getLogger(__name__)

_FALLBACK_SERVING = Path("models/serving")

_EPILOG = """\
output columns: the contract's id column (or, when it declares none, `row`: each row's line (CSV) or row
(Parquet) number in the input), probability, label (probability >= the packaged threshold), model_version.
Refused rows go to the rejects file (line or row number, id, reason naming column and value).
Both files are written to <file>.partial and renamed only when the whole input has been scored.

exit status: 0 scored (even with rejects: see the summary); 2 bad input, with one message naming the file, option or
key (unreadable or empty input, missing columns, a serving folder that is missing, truncated or altered, an output
option that names a folder or an unwritable place, a bad params file), nothing written; 3 an unexpected failure
(a bug, or a fault of the machine), with its traceback.
"""


def add_score_parser(commands: argparse._SubParsersAction) -> None:
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
    score.set_defaults(func=_cmd_score)


def _cmd_score(args: argparse.Namespace) -> int:
    """Score ``--input``; every ``TabreproError`` (data, serving folder, params, paths) is exit 2 in ``main()``."""
    from tabrepro.batch.scoring import score_file

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
        on_chunk=drift.update if drift else None,
    )
    log.info("%s", summary.describe())
    if args.summary:
        write_json(args.summary, summary.to_dict())
    if drift:
        drift.write(summary)
    return 0


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
        self.accumulator = start_drift(self.reference, self.manifest, self.contract, self.params)
        self.report_path: Path = args.drift_report
        self.input = args.input

    def update(self, chunk: pa.Table, probabilities: np.ndarray) -> None:
        from tabrepro.contract.table import parse_table

        parsed, problems = parse_table(chunk.to_pandas(), self.contract)
        self.accumulator.update(parsed, probabilities, problems=problems)

    def write(self, summary: Any) -> None:
        from tabrepro.batch.tables import table_format
        from tabrepro.monitoring.check import finish_drift, format_summary, write_drift_outputs

        inputs = {
            "current": str(self.input),
            "kind": table_format(Path(self.input), role="input"),
            "scored": summary.rows_scored,
        }
        report = finish_drift(self.accumulator, self.params, inputs, self.reference, self.manifest)
        figures = write_drift_outputs(report, self.report_path, self.report_path.parent / "figures")
        sys.stderr.write(format_summary(report, figures, self.report_path))
        if report["decision"]["retrain"]:
            log.warning(
                "drift: retrain recommended (%s); see %s", "; ".join(report["decision"]["reasons"]), self.report_path
            )


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse, before reading anything, an output option that names a folder or a place that cannot be written."""
    from tabrepro.batch.scoring import default_rejects_path

    check_output_path(args.output, option="--output")
    check_output_path(args.rejects or default_rejects_path(args.output), option="--rejects")
    if args.summary:
        check_output_path(args.summary, option="--summary")
    if args.drift_report:
        check_output_path(args.drift_report, option="--drift-report")
        check_output_path(args.drift_report.parent / "figures", option="--drift-report (its figures)", kind="folder")


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
