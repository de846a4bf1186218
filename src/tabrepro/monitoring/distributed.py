"""``tabrepro drift`` on Dask: one task per table file, each feeding its own ``DriftAccumulator`` on a worker
(with that worker's verified model, as ``tabrepro.sessions.worker_model`` opens it), merged on the client.

Every statistic an accumulator keeps is an exact count or sum (see ``tabrepro.monitoring.tally``), so the merged
report is the one-process report number for number, whatever the partitioning and the order tasks finish in.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabrepro.artefacts import ReferenceStats, ScoreReference
from tabrepro.monitoring.drift import DriftAccumulator
from tabrepro.monitoring.feed import TableFed, feed_table
from tabrepro.monitoring.inputs import Kind
from tabrepro.sessions import worker_model

if TYPE_CHECKING:
    from distributed import Client


def feed_tables_on_dask(
    files: list[Path], kind: Kind, serving_dir: Path, sha256: str, accumulator: DriftAccumulator, client: Client
) -> dict[str, Any]:
    """Feed every file to ``accumulator`` through ``client``'s workers (each verifying that its model has
    ``sha256``); the report's ``inputs`` entries."""
    futures = client.map(
        _drift_part,
        [str(f.absolute()) for f in files],
        kind=kind,
        serving_dir=str(serving_dir.absolute()),
        sha256=sha256,
        reference=accumulator.reference_stats,
        score_reference=accumulator.score_reference,
        pure=False,
    )
    fed = TableFed()
    for part, part_fed in client.gather(futures):  # in file order: the merge itself does not depend on it
        accumulator.merge(part)
        fed.add(part_fed)
    return fed.describe(files)


def _drift_part(
    source: str,
    *,
    kind: Kind,
    serving_dir: str,
    sha256: str,
    reference: ReferenceStats,
    score_reference: ScoreReference | None,
) -> tuple[DriftAccumulator, TableFed]:
    """On a worker: the accumulator of one file."""
    model, _ = worker_model(serving_dir, sha256)
    accumulator = DriftAccumulator(reference, score_reference, model.contract)
    return accumulator, feed_table(Path(source), kind, model, accumulator)
