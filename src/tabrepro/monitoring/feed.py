"""Tables fed to a drift accumulator: each chunk parsed by the contract (problems counted, not rejected), the rows
the service would accept scored with the packaged model, and a tally of what was scored and refused.

Used by ``tabrepro drift`` in one process (``monitoring.check``) and on Dask workers (``monitoring.distributed``).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tabrepro.contract.table import parse_table
from tabrepro.monitoring.drift import DriftAccumulator
from tabrepro.monitoring.inputs import Kind, iter_table
from tabrepro.monitoring.scores import graph_output
from tabrepro.serving.runtime import ServingModel, feeds_from_records, validate_records

log = logging.getLogger(__name__)


@dataclass
class TableFed:
    """What feeding tables did: rows scored, rows the service would refuse, and why (counts per reason)."""

    scored: int = 0
    refused: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, other: TableFed) -> None:
        self.scored, self.refused = self.scored + other.scored, self.refused + other.refused
        self.reasons.update(other.reasons)

    def describe(self, files: list[Path]) -> dict[str, Any]:
        """The report's ``inputs`` entries; a warning when rows were refused."""
        if self.refused:
            top = dict(self.reasons.most_common(3))
            log.warning("%d row(s) the service would refuse were not scored (%s)", self.refused, top)
        refused_by = dict(self.reasons.most_common(10))
        return {
            "files": [str(f) for f in files],
            "scored": self.scored,
            "refused": self.refused,
            "refused_by": refused_by,
        }


def feed_table(path: Path, kind: Kind, model: ServingModel, accumulator: DriftAccumulator) -> TableFed:
    """Parse every chunk of one table into the accumulator; score the rows the service would accept."""
    contract, fed = model.contract, TableFed()
    for raw in iter_table(path, kind, contract):
        parsed, problems = parse_table(raw, contract)
        features = raw[contract.feature_names]
        records = features.astype(object).where(features.notna(), None).to_dict(orient="records")
        valid, errors = validate_records(records, model.record_model)
        accumulator.update(parsed, _scores(model, valid), problems=problems)
        fed.scored, fed.refused = fed.scored + len(valid), fed.refused + len(records) - len(valid)
        fed.reasons.update(f"{e.field}: {e.reason}" for e in errors)
    return fed


def _scores(model: ServingModel, valid: list[dict[str, Any]]) -> np.ndarray:
    """The task's scores of the valid records (binary: ``predict_proba``, as before the other tasks)."""
    task = model.contract.target.task
    if not valid:
        return np.empty(0)
    if task == "binary":
        return model.predict_proba(valid)
    return graph_output(model.session, feeds_from_records(valid, model.contract), task=task)


def feed_tables(files: list[Path], kind: Kind, model: ServingModel, accumulator: DriftAccumulator) -> dict[str, Any]:
    """Feed every file in turn, in one process; the report's ``inputs`` entries."""
    fed = TableFed()
    for path in files:
        fed.add(feed_table(path, kind, model, accumulator))
    return fed.describe(files)
