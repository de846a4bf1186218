"""Batch scoring on Dask: many input files scored in parallel, one task per file, into a partitioned Parquet
output folder and one rejects file, with the results of the single-process scorer file by file.

Each worker opens the packaged model once (``tabrepro.sessions.worker_model``): it verifies the sealed manifest
and the model's sha256 on the worker, and refuses a model other than the one the client read. A task is
``score_with_session`` on one file, so its rows, probabilities, rejects and messages are those of
``tabrepro score`` on that file (ids are checked for repeats within a file, as there).

Exactly once: input file ``i`` (in ``expand_inputs`` order) is written only to ``part-<i>.parquet`` of the
run's staging folder ``<output>.partial/<run id>``, through a ``.partial`` file renamed when complete. A task
that Dask runs again (a lost worker) rewrites the same part, so no row is written twice; a task of an earlier,
failed run that is still running writes in its own run's folder, never in this one. The output folder is
published (renamed) only when every file has its part and the part holds the rows its task scored (checked
against the Parquet footers); until then ``<output>`` keeps the previous run's folder. The workers must see the
paths (one machine, or a shared file system).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from tabrepro.artefacts import ReferenceStats, ScoreReference
from tabrepro.batch.scoring import ScoreSummary, rejects_schema, score_with_session
from tabrepro.batch.tables import StagedWriter
from tabrepro.errors import DataError, TabreproError
from tabrepro.io.staging import write_json
from tabrepro.io.tables import expand_inputs, table_format
from tabrepro.monitoring.drift import DriftAccumulator
from tabrepro.serving.runtime import ServingError, ServingModel
from tabrepro.sessions import worker_model

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger(__name__)

PARTS_FILE = "_parts.json"  # what each part holds; a leading "_" keeps Parquet dataset readers off it
_REJECTS_DIR = "_rejects"


@contextmanager
def open_client(
    *, scheduler: str | None = None, workers: int | None = None, memory_limit: str = "auto", processes: bool = True
) -> Iterator[Client]:
    """A client of the scheduler at ``scheduler``, or of a ``LocalCluster`` of ``workers`` single-threaded
    workers (``memory_limit`` each) that is closed on exit."""
    from distributed import Client, LocalCluster

    if (scheduler is None) == (workers is None):
        raise ValueError("give either a scheduler address or a number of workers")
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise DataError(f"--scheduler {scheduler}: cannot reach a Dask scheduler there ({exc})") from None
        with client:
            yield client
        return
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=processes,
        memory_limit=memory_limit,
        dashboard_address=":0",  # a free port: several clusters may run on one machine
    )
    with cluster, Client(cluster) as client:
        yield client


def score_on_dask(
    inputs: str | Path,
    output_dir: str | Path,
    *,
    serving_dir: str | Path,
    client: Client,
    rejects_path: str | Path | None = None,
    chunk_rows: int = 100_000,
    threads: int = 1,
    drift: DriftAccumulator | None = None,
) -> ScoreSummary:
    """Score every file ``inputs`` names (a folder, a glob, a file) on ``client``'s workers into the Parquet
    folder ``output_dir`` (``part-<i>.parquet`` per input file, and ``_parts.json``) and one rejects file
    (default ``<output>.rejects.csv``) whose first column names the input file.

    ``threads``: intra-op threads of each worker's session (1: the worker's task is one core; the cluster's
    parallelism is its workers). A tree ensemble's float32 sum depends on its thread count, so the
    probabilities are bitwise those of ``score_file(..., threads=threads)``; the default all-core session of
    ``score_file`` differs from them in the last bits (at most 2.4e-7 measured on Telco).

    ``drift``: an accumulator that also gets every row and score, each worker feeding its own for its file (as
    ``score --drift-report`` does in one process) and the client merging them into it (exact, see
    ``tabrepro.monitoring.tally``)."""
    output, serving = Path(output_dir).absolute(), Path(serving_dir).absolute()
    rejects = Path(rejects_path) if rejects_path is not None else output.with_name(f"{output.name}.rejects.csv")
    files = [f.absolute() for f in expand_inputs(inputs)]
    kinds = {table_format(f, role="input") for f in files}
    if len(kinds) > 1:
        raise DataError(f"input {inputs}: mixes CSV and Parquet files; score each kind on its own")
    table_format(rejects, role="rejects")
    inside = [f for f in files if output in f.parents or output.with_name(output.name + ".partial") in f.parents]
    if inside:
        raise DataError(f"input {inside[0]} is inside the output folder {output}, which each run replaces")
    if chunk_rows < 1:
        raise DataError(f"chunk_rows must be >= 1, got {chunk_rows}")
    try:
        manifest = ServingModel.read_manifest(serving)
    except (ServingError, OSError) as exc:
        raise DataError(f"serving folder {serving}: {exc}") from None
    runs = output.with_name(output.name + ".partial")
    shutil.rmtree(runs, ignore_errors=True)  # what a failed or killed run left
    staging = runs / uuid.uuid4().hex[:12]  # this run's: a task of an earlier run still running cannot write here
    (staging / _REJECTS_DIR).mkdir(parents=True)
    start = time.perf_counter()
    futures = client.map(
        _score_part,
        list(range(len(files))),
        [str(f) for f in files],
        serving_dir=str(serving),
        sha256=manifest.onnx_sha256,
        staging=str(staging),
        chunk_rows=chunk_rows,
        threads=threads,
        drift=None if drift is None else (drift.reference_stats, drift.score_reference),
        pure=False,
    )
    try:
        parts = client.gather(futures)
    except TabreproError as exc:  # raised on a worker: bad data, or a model other than the client's
        client.cancel(futures)
        raise DataError(f"{exc}\n{output} was not changed; parts scored so far are in {staging}") from None
    for part in parts:  # in file order; the merge is exact in any order
        accumulator = part.pop("drift")
        if drift is not None:
            drift.merge(accumulator)
    summary = _summarize(parts, inputs, output, rejects, manifest.version, manifest.onnx_sha256)
    _check_parts(parts, staging)
    number_label = "row" if kinds == {"parquet"} else "line"
    _publish(parts, staging, output, rejects, number_label, summary)
    summary.stop_clock(start)
    return summary


def _score_part(
    index: int,
    source: str,
    *,
    serving_dir: str,
    sha256: str,
    staging: str,
    chunk_rows: int,
    threads: int,
    drift: tuple[ReferenceStats, ScoreReference | None] | None,
) -> dict[str, Any]:
    """On a worker: score one input file into its part and its rejects part; what it did, as plain data (and,
    given the drift references, the drift accumulator of the file)."""
    model, session = worker_model(serving_dir, sha256, threads=threads)
    accumulator = None if drift is None else DriftAccumulator(*drift, model.contract)
    folder = Path(staging)
    if not folder.is_dir():  # a late attempt of a run that was already published or given up
        raise DataError(f"{folder}: the staging folder is gone; not scoring {source}")
    name = f"part-{index:05d}.parquet"
    done = score_with_session(
        Path(source),
        folder / name,
        folder / _REJECTS_DIR / name,
        model=model,
        session=session,
        chunk_rows=chunk_rows,
        on_chunk=None if accumulator is None else lambda chunk, p: accumulator.update_text(chunk.to_pandas(), p),
    )
    return {
        "file": source,
        "part": name,
        "rows_read": done.rows_read,
        "rows_scored": done.rows_scored,
        "rows_rejected": done.rows_rejected,
        "rejects_by_column": done.rejects_by_column,
        "drift": accumulator,
    }


def _summarize(
    parts: list[dict[str, Any]], inputs: str | Path, output: Path, rejects: Path, version: str, sha256: str
) -> ScoreSummary:
    summary = ScoreSummary(str(inputs), str(output), str(rejects), version, sha256)
    for part in parts:
        summary.rows_read += part["rows_read"]
        summary.rows_scored += part["rows_scored"]
        summary.rows_rejected += part["rows_rejected"]
        for name, count in part["rejects_by_column"].items():
            summary.rejects_by_column[name] = summary.rejects_by_column.get(name, 0) + count
    return summary


def _check_parts(parts: list[dict[str, Any]], staging: Path) -> None:
    """Every input has its part, holding the rows its task scored; nothing else is in the folder."""
    expected = {p["part"] for p in parts}
    for leftover in staging.glob("*.partial"):  # an attempt killed midway, replaced by its retry
        leftover.unlink()
    found = {p.name for p in staging.glob("*.parquet")}
    if found != expected or len(expected) != len(parts):
        raise DataError(f"{staging}: parts {sorted(found ^ expected)} do not match the inputs; nothing was published")
    for part in parts:
        rows = pq.ParquetFile(staging / part["part"]).metadata.num_rows
        if rows != part["rows_scored"]:
            raise DataError(f"{staging / part['part']}: {rows} rows, its task scored {part['rows_scored']}")


def _publish(
    parts: list[dict[str, Any]], staging: Path, output: Path, rejects: Path, number_label: str, summary: ScoreSummary
) -> None:
    """One rejects file from the parts' (``file`` first), the parts list, then the renames."""
    schema = pa.schema([("file", pa.string()), *rejects_schema(number_label)])
    writer = StagedWriter(rejects, schema)
    try:
        for part in parts:
            table = pq.read_table(staging / _REJECTS_DIR / part["part"])
            writer.write(table.add_column(0, "file", pa.array([part["file"]] * table.num_rows, pa.string())))
    finally:
        writer.close()
    shutil.rmtree(staging / _REJECTS_DIR)
    record = {k: v for k, v in summary.to_dict().items() if k not in ("seconds", "rows_per_second")}
    write_json(staging / PARTS_FILE, record | {"parts": parts})
    previous = output.with_name(output.name + ".old")
    shutil.rmtree(previous, ignore_errors=True)
    if output.exists():
        os.replace(output, previous)
    os.replace(staging, output)
    shutil.rmtree(previous, ignore_errors=True)
    shutil.rmtree(staging.parent, ignore_errors=True)
    writer.commit()
    log.info("published %d part(s) to %s, rejects to %s", len(parts), output, rejects)
