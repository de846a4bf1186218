"""Current data for drift checks, read in bounded chunks: raw tables (CSV / Parquet, as text: a file, a folder
or a glob of them) or the service's prediction log (JSON lines, one object per scored record; a folder of logs
means every ``*.jsonl*`` file in it)."""

from __future__ import annotations

import glob
import gzip
import json
import math
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from tabrepro.contract.spec import DataContract
from tabrepro.errors import DataError
from tabrepro.io.raw import open_raw
from tabrepro.io.tables import expand_inputs, table_format

Kind = Literal["csv", "parquet", "log"]
CHUNK_ROWS = 50_000
_LOG_NAME = re.compile(r"\.jsonl(\.\d+)?(\.gz)?$")


def detect_kind(path: Path) -> Kind:
    """By extension: .csv, .parquet, .jsonl / .jsonl.N (.gz); a folder of prediction logs, or else of tables
    (``expand_inputs``), or a glob pattern of tables: the kind of their files (CSV or Parquet, not both)."""
    if path.is_dir() and any(p.is_file() and _LOG_NAME.search(p.name) for p in path.iterdir()):
        return "log"
    if path.is_dir() or (not path.exists() and glob.has_magic(str(path))):
        kinds = {table_format(p, role="input") for p in expand_inputs(path)}
        if len(kinds) > 1:
            raise DataError(f"{path}: mixes CSV and Parquet files; check each kind on its own")
        return "csv" if kinds == {"csv"} else "parquet"
    if not path.is_file():
        raise DataError(f"{path}: not found")
    if path.suffix.lower() == ".csv":
        return "csv"
    if path.suffix.lower() in (".parquet", ".pq"):
        return "parquet"
    if _LOG_NAME.search(path.name):
        return "log"
    raise DataError(f"{path}: cannot tell what it is; expected .csv, .parquet, .jsonl[.N] or a folder of .jsonl logs")


def iter_table(path: Path, kind: Kind, contract: DataContract) -> Iterator[pd.DataFrame]:
    """Raw chunks with every column as text, indexed by their rows' numbers (CSV lines, Parquet rows from 1), read
    by the one raw reader (the features are required; the id and the target are read when present)."""
    source = open_raw(
        path, contract, fmt=kind, required=contract.feature_names, columns=contract.columns, chunk_rows=CHUNK_ROWS
    )
    yield from source.frames()


def log_files(path: Path) -> list[Path]:
    """The log itself, or every ``*.jsonl*`` file of a folder (rotated logs), oldest rotation first."""
    if path.is_file():
        return [path]
    files = sorted((p for p in path.iterdir() if p.is_file() and _LOG_NAME.search(p.name)), key=_rotation_order)
    if not files:
        raise DataError(f"{path}: no prediction logs (*.jsonl, *.jsonl.N) in this folder")
    return files


def _rotation_order(path: Path) -> tuple[str, int]:
    match = _LOG_NAME.search(path.name)
    number = int(match.group(1)[1:]) if match and match.group(1) else 0
    return path.name[: match.start() if match else None], -number


def iter_log(
    files: list[Path], contract: DataContract, *, role: str, roles: Counter[str], versions: Counter[str]
) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
    """(parsed inputs, probabilities) chunks of the ``served`` lines of ``role``, counting served lines per role
    and, of ``role``, per model version. A line that is not a valid log record is an error naming file and line."""
    inputs: list[dict[str, Any]] = []
    probabilities: list[Any] = []  # the task's score of each line (``_score``)
    for path in files:
        for where, entry in _read_lines(path):
            if entry["served"] is not True:
                continue
            roles[str(entry["role"])] += 1
            if entry["role"] != role:
                continue
            versions[str(entry.get("model_version"))] += 1
            score = _score(entry, contract, where)  # checked first, as before the other tasks
            inputs.append(_check_inputs(entry, contract, where))
            probabilities.append(score)
            if len(inputs) == CHUNK_ROWS:
                yield _frame(inputs, contract), np.asarray(probabilities, dtype=float)
                inputs, probabilities = [], []
    if inputs:
        yield _frame(inputs, contract), np.asarray(probabilities, dtype=float)


def _read_lines(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    opener = gzip.open if path.name.endswith(".gz") else open
    number = 0
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{number}"
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{where}: corrupt log line, not JSON ({exc.msg}, column {exc.colno})") from None
                if not isinstance(entry, dict) or not isinstance(entry.get("served"), bool) or "role" not in entry:
                    raise DataError(f"{where}: not a prediction log record (no 'served' flag or 'role')")
                yield where, entry
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise DataError(f"{path}:{number + 1}: cannot be read as UTF-8 JSON lines: {exc}") from None


def _score(entry: dict[str, Any], contract: DataContract, where: str) -> float | list[float]:
    """The line's score as the service answered it, per task: binary ``probability``; regression ``prediction``;
    multiclass ``probabilities`` keyed by class, returned in the contract's class order."""
    task = contract.target.task
    if task == "binary":
        return _number(entry, "probability", where, unit=True)
    if task == "regression":
        return _number(entry, "prediction", where, unit=False)
    given = entry.get("probabilities")
    classes = list(contract.target.labels)
    if not isinstance(given, dict) or sorted(given) != sorted(classes):
        raise DataError(f"{where}: 'probabilities' must be an object keyed by the classes {classes}, got {given!r}")
    return [_number(given, c, f"{where}: probabilities", unit=True) for c in classes]


def _number(entry: dict[str, Any], key: str, where: str, *, unit: bool) -> float:
    value, kind = entry.get(key), "a number in [0, 1]" if unit else "a finite number"
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise DataError(f"{where}: {key!r} must be {kind}, got {value!r}")
    if unit and not 0 <= value <= 1:
        raise DataError(f"{where}: {key!r} must be {kind}, got {value!r}")
    return float(value)


def _check_inputs(entry: dict[str, Any], contract: DataContract, where: str) -> dict[str, Any]:
    inputs = entry.get("inputs")
    if not isinstance(inputs, dict):
        raise DataError(f"{where}: 'inputs' must be an object of the record's features")
    for name, spec in contract.features.items():
        if name not in inputs:
            raise DataError(f"{where}: 'inputs' lacks feature {name!r}")
        value, text = inputs[name], spec.type == "categorical"
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if value is not None and not (isinstance(value, str) if text else number):
            raise DataError(f"{where}: inputs.{name} must be {'text' if text else 'a number'} or null, got {value!r}")
    return inputs


def _frame(inputs: list[dict[str, Any]], contract: DataContract) -> pd.DataFrame:
    """Validated records as ``parse_table`` would have parsed them: floats for numbers and booleans, text levels."""
    frame = pd.DataFrame.from_records(inputs, columns=contract.feature_names)
    numbers = contract.numeric_features + contract.boolean_features
    frame[numbers] = frame[numbers].astype("float64")
    frame[contract.categorical_features] = frame[contract.categorical_features].astype("str")
    return frame
