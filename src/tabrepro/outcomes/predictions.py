"""The predictions that labels are joined to: the service's prediction log, or ``tabrepro score`` outputs.

One row per scored record per model: ``ts`` (UTC), ``model_version``, ``role``, ``id``, ``request_key``
(``<request_id>:<index>``), ``probability``. The log's roles become the rollout's: a ``candidate`` whose
answers were served is the ``canary``, one whose answers were not is the ``shadow``; any other role as logged.
A score output (id column, probability, model_version) has role ``batch`` and the time given (default: the
file's mtime).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from tabrepro.contract.spec import DataContract
from tabrepro.errors import DataError
from tabrepro.io.tables import expand_inputs, table_format
from tabrepro.monitoring.inputs import detect_kind, log_files

PREDICTION_COLUMNS = ["ts", "model_version", "role", "id", "request_key", "probability"]
# one row of PREDICTION_COLUMNS: the time and the id as the source gives them (the frame parses them)
PredictionRow = tuple[Any, str, str, Any, str | None, float]


def prediction_files(spec: Path) -> tuple[str, list[Path]]:
    """("log", the log files) or ("scores", the score outputs) that ``spec`` names."""
    if detect_kind(spec) == "log":
        return "log", log_files(spec)
    return "scores", expand_inputs(spec)


def read_predictions(
    kind: str, path: Path, contract: DataContract, *, scored_at: datetime | None = None
) -> pd.DataFrame:
    """One file's predictions (see the module doc); a line or column that is not one is named (exit 2)."""
    if kind == "log":
        return _frame(_log_rows(path))
    return _scores(path, contract, scored_at)


def empty_predictions() -> pd.DataFrame:
    return _frame([])


def _log_rows(path: Path) -> Iterable[PredictionRow]:
    with path.open("r", encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                e = json.loads(line)
                role = _role(str(e["role"]), served=bool(e["served"]))
                key = f"{e['request_id']}:{int(e['index'])}"
                row = (e["ts"], str(e["model_version"]), role, e.get("id"), key, float(e["probability"]))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise DataError(f"{path}:{number}: not a prediction log record ({type(exc).__name__}: {exc})") from None
            yield row


def _role(logged: str, *, served: bool) -> str:
    """The rollout's role of a log line: a candidate is the canary or the shadow; others (primary, a future
    fallback) as logged, so a model that answered in another role is never taken for the candidate."""
    if logged != "candidate":
        return logged
    return "canary" if served else "shadow"


def _scores(path: Path, contract: DataContract, scored_at: datetime | None) -> pd.DataFrame:
    key = contract.key_column
    fmt = table_format(path, role="predictions")
    table = pd.read_parquet(path) if fmt == "parquet" else pd.read_csv(path, dtype={key: "str"})
    missing = [c for c in (key, "probability", "model_version") if c not in table.columns]
    if missing:
        raise DataError(f"{path}: not a `tabrepro score` output: missing column(s) {missing}")
    when = scored_at or datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
    rows = zip(table[key].astype(str), table["model_version"].astype(str), table["probability"], strict=True)
    return _frame((when.isoformat(), version, "batch", ident, None, float(p)) for ident, version, p in rows)


def _frame(rows: Iterable[PredictionRow]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(list(rows), columns=PREDICTION_COLUMNS)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True, format="ISO8601")
    frame["probability"] = frame["probability"].astype("float64")
    for column in ("model_version", "role", "id", "request_key"):
        frame[column] = frame[column].astype("object")
    return frame
