"""Batch scoring: a raw CSV or Parquet file through the packaged ONNX model, in chunks of bounded memory.

Each chunk is checked row by row against the data contract (``tabrepro.contract.rows``: the grammar that
``prepare`` and the service apply; an id that an earlier row had is refused too): valid rows are scored in one
``session.run`` with feeds built column-wise from the parsed frame, into the task's columns
(``tabrepro.batch.outputs``); refused rows go to a rejects file with their reasons. Output and rejects are
written as they come to ``.partial`` files that are renamed into place only when the whole input has been
scored, so a failure midway never leaves a truncated file where a good one was.
Each scored row is keyed by ``contract.key_column``: its id, or (a contract without an id) its line (CSV) or row
(Parquet) number in the input, the numbering of the rejects file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from tabrepro.batch.outputs import empty_output, score_columns, score_fields
from tabrepro.batch.tables import OutputWriteError, StagedWriter, open_chunks
from tabrepro.contract.rows import SeenIds, check_rows
from tabrepro.contract.spec import DataContract
from tabrepro.errors import DataError
from tabrepro.io.raw import RawChunks
from tabrepro.io.tables import table_format
from tabrepro.monitoring.scores import graph_output
from tabrepro.serving.runtime import ServingModel
from tabrepro.sessions import open_session

# sees each raw chunk (an Arrow table of text) and the scores of its valid rows (``monitoring.scores.graph_output``'s)
ChunkObserver = Callable[[pa.Table, np.ndarray], None]


@dataclass
class ScoreSummary:
    """What a scoring run did; ``seconds`` covers reading, checking, scoring and writing (not model loading)."""

    input: str
    output: str
    rejects: str
    model_version: str
    model_sha256: str
    rows_read: int = 0
    rows_scored: int = 0
    rows_rejected: int = 0
    rejects_by_column: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    rows_per_second: float = 0.0

    def stop_clock(self, start: float) -> None:
        """Set ``seconds`` since ``start`` (a ``time.perf_counter()``) and the rate they give."""
        self.seconds = time.perf_counter() - start
        self.rows_per_second = self.rows_read / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, object]:
        return asdict(self) | {"seconds": round(self.seconds, 3), "rows_per_second": round(self.rows_per_second, 1)}

    def describe(self) -> str:
        columns = ", ".join(f"{k} {v}" for k, v in sorted(self.rejects_by_column.items(), key=lambda kv: -kv[1]))
        return (
            f"scored {self.input} -> {self.output}: {self.rows_read} rows read, {self.rows_scored} scored, "
            f"{self.rows_rejected} rejected{f' ({columns})' if columns else ''} -> {self.rejects}; "
            f"{self.seconds:.2f} s ({self.rows_per_second:,.0f} rows/s); "
            f"model {self.model_version} (sha256 {self.model_sha256[:12]})"
        )


def default_rejects_path(output: Path) -> Path:
    """``<output stem>.rejects.csv`` next to the output."""
    return output.with_name(f"{output.stem}.rejects.csv")


def feeds_from_frame(frame: pd.DataFrame, contract: DataContract) -> dict[str, np.ndarray]:
    """ONNX feeds from a parsed frame, column-wise: the convention of ``runtime.feeds_from_records``
    (float32 (n, 1) with NaN for numbers and booleans; object (n, 1) with "" for a missing category)."""
    n = len(frame)
    feeds = {
        name: frame[name].to_numpy(dtype=np.float32, na_value=np.nan).reshape(n, 1)
        for name in contract.numeric_features + contract.boolean_features
    }
    return feeds | {name: _text_feed(frame[name]).reshape(n, 1) for name in contract.categorical_features}


def _text_feed(column: pd.Series) -> np.ndarray:
    """Object array with "" for missing. Indexing the few distinct strings by code is far cheaper than making
    one Python str per cell: categories directly, other text after dictionary-encoding it."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        categories: np.ndarray = np.append(column.cat.categories.to_numpy(dtype=object), "")
        picked: np.ndarray = categories[column.cat.codes.to_numpy()]  # code -1 (missing) picks the "" appended last
        return picked
    text = pa.array(column, type=pa.string())
    text = text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text
    encoded = pc.dictionary_encode(pc.fill_null(text, ""))
    levels: np.ndarray = encoded.dictionary.to_numpy(zero_copy_only=False).astype(object)
    values: np.ndarray = levels[encoded.indices.to_numpy(zero_copy_only=False)]
    return values


def score_file(
    input_path: str | Path,
    output_path: str | Path,
    *,
    serving_dir: str | Path,
    rejects_path: str | Path | None = None,
    chunk_rows: int = 100_000,
    progress: bool = True,
    threads: int | None = None,
    on_chunk: ChunkObserver | None = None,
    providers: Sequence[str] | None = None,
) -> ScoreSummary:
    """Score every valid row of ``input_path`` into ``output_path`` (key, the task's columns of
    ``tabrepro.batch.outputs``, model_version) and write refused rows with their reasons to ``rejects_path``
    (default: ``default_rejects_path(output)``).

    ``threads`` None scores on the serving model's own session (ONNX Runtime's default: every core); a number
    builds a session with that many intra-op threads (the benchmark's per-core figure uses 1). ``on_chunk`` sees
    every raw chunk (text, as read) with the scores of its valid rows (``--drift-report`` feeds drift).
    ``providers`` overrides the manifest's execution providers; the graph is the one the manifest gives the
    provider that runs (``CUDAExecutionProvider``: the tensor graph; falls back to the CPU and its graph, with a
    warning, where CUDA cannot start).
    """
    source_path, output, serving = Path(input_path), Path(output_path), Path(serving_dir)
    rejects = Path(rejects_path) if rejects_path is not None else default_rejects_path(output)
    for path, role in ((source_path, "input"), (output, "output"), (rejects, "rejects")):
        table_format(path, role=role)
    if chunk_rows < 1:
        raise DataError(f"chunk_rows must be >= 1, got {chunk_rows}")
    if len({source_path.resolve(), output.resolve(), rejects.resolve()}) < 3:
        raise DataError(f"input {source_path}, output {output} and rejects {rejects} must be three different files")
    model = ServingModel(serving, providers=providers)
    session = open_session(serving, model, threads=threads)
    return score_with_session(
        source_path,
        output,
        rejects,
        model=model,
        session=session,
        chunk_rows=chunk_rows,
        progress=progress,
        on_chunk=on_chunk,
    )


def score_with_session(
    source_path: Path,
    output: Path,
    rejects: Path,
    *,
    model: ServingModel,
    session: ort.InferenceSession,
    chunk_rows: int,
    progress: bool = False,
    on_chunk: ChunkObserver | None = None,
) -> ScoreSummary:
    """``score_file`` with a model and session already opened and verified (a Dask worker keeps one of each for
    every file it scores); the paths are taken as checked."""
    summary = ScoreSummary(str(source_path), str(output), str(rejects), model.version, model.sha256)
    start = time.perf_counter()
    source = open_chunks(source_path, model.contract, chunk_rows=chunk_rows)
    _score_chunks(source, model, session, summary, progress=progress, on_chunk=on_chunk)
    summary.stop_clock(start)
    return summary


def _score_chunks(
    source: RawChunks,
    model: ServingModel,
    session: ort.InferenceSession,
    summary: ScoreSummary,
    *,
    progress: bool,
    on_chunk: ChunkObserver | None,
) -> None:
    """Check, score and write every chunk; commit both files at the end, or keep the ``.partial`` ones and say so."""
    writers: list[StagedWriter] = []
    seen = SeenIds()  # every id of the file so far: a repeat is refused, as prepare refuses it
    bar = tqdm(total=source.total_rows, unit="rows", unit_scale=True, disable=not progress, desc="scoring")
    try:
        for chunk in source.chunks:
            checked = check_rows(
                chunk,
                model.contract,
                first_number=source.first_number + summary.rows_read,
                number_label=source.number_label,
                seen=seen,
            )
            if not writers:  # created with the first rows: a file that fails on opening leaves nothing behind
                writers = _open_writers(summary, model.contract, source.number_label)
            scored, output = _score_frame(session, checked.valid, model)
            writers[0].write(scored)
            if on_chunk is not None:
                on_chunk(chunk, output)
            writers[1].write(pa.Table.from_pandas(checked.rejects, preserve_index=False))
            _tally(summary, chunk.num_rows, checked.rejects_by_column, len(checked.rejects))
            bar.update(chunk.num_rows)
            del chunk, checked, scored, output  # before the next chunk is read: one chunk in memory at a time
    except OutputWriteError as exc:  # a full disk: what was written cannot be trusted, so nothing is kept
        _discard(writers)
        raise DataError(f"{exc}\nNothing was kept; {summary.output} was not changed.") from None
    except DataError as exc:
        raise DataError(f"{exc}\n{_kept(summary, writers)}") from None
    finally:
        bar.close()
        for writer in writers:
            with suppress(OutputWriteError):
                writer.close()
    if not writers:
        raise DataError(f"{summary.input}: the file has no data rows")
    _commit(writers, summary)


def _commit(writers: list[StagedWriter], summary: ScoreSummary) -> None:
    try:
        for writer in writers:
            writer.commit()
    except OutputWriteError as exc:
        _discard(writers)
        raise DataError(f"{exc}\nNothing was kept; {summary.output} was not changed.") from None


def _discard(writers: list[StagedWriter]) -> None:
    for writer in writers:
        writer.discard()


def _open_writers(summary: ScoreSummary, contract: DataContract, number_label: str) -> list[StagedWriter]:
    output = StagedWriter(Path(summary.output), _output_schema(contract))
    try:
        return [output, StagedWriter(Path(summary.rejects), rejects_schema(number_label))]
    except DataError:
        output.close()
        output.partial.unlink(missing_ok=True)
        raise


def _score_frame(
    session: ort.InferenceSession, valid: pd.DataFrame, model: ServingModel
) -> tuple[pa.Table, np.ndarray]:
    """The output rows of the valid rows (``tabrepro.batch.outputs``: the task's columns), and their scores."""
    contract, n = model.contract, len(valid)
    task = contract.target.task
    output = graph_output(session, feeds_from_frame(valid, contract), task=task) if n else empty_output(contract)
    threshold = model.threshold if task == "binary" else None
    columns = {
        contract.key_column: pa.array(valid[contract.key_column], type=_key_type(contract)),
        **score_columns(output, contract, threshold=threshold),
        "model_version": pa.repeat(pa.scalar(model.version), n),
    }
    return pa.table(columns), output


def _output_schema(contract: DataContract) -> pa.Schema:
    columns = [(contract.key_column, _key_type(contract)), *score_fields(contract)]
    return pa.schema([*columns, ("model_version", pa.string())])


def _key_type(contract: DataContract) -> pa.DataType:
    """The key column's type: text ids, or the rows' numbers when the contract has no id."""
    return pa.string() if contract.id_column is not None else pa.int64()


def rejects_schema(number_label: str) -> pa.Schema:
    """The rejects file's columns: the row's line or row number, its id, the reason naming column and value."""
    return pa.schema([(number_label, pa.int64()), ("id", pa.string()), ("reason", pa.string())])


def _tally(summary: ScoreSummary, rows: int, by_column: dict[str, int], rejected: int) -> None:
    summary.rows_read += rows
    summary.rows_rejected += rejected
    summary.rows_scored += rows - rejected
    for name, count in by_column.items():
        summary.rejects_by_column[name] = summary.rejects_by_column.get(name, 0) + count


def _kept(summary: ScoreSummary, writers: list[StagedWriter]) -> str:
    if not writers or summary.rows_read == 0:
        return f"No rows were scored; {summary.output} was not changed."
    return (
        f"Data rows 1..{summary.rows_read} were scored and kept in {writers[0].partial} "
        f"(rejects in {writers[1].partial}); {summary.output} was not changed."
    )
