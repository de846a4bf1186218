"""Ground truth as it arrives: label files read, checked by the contract's grammar, then de-duplicated.

A label file (CSV or Parquet; a folder or glob of them) has a key, the observed target and ``observed_at``:
- the key is the contract's id column (the record's id), or ``request_id`` with an optional ``index`` (the
  record's position in its request, default 0; the key of a record without an id);
- the target column is the contract's, its tokens those of the contract (``Yes`` / ``No`` for Telco): anything
  else is refused naming file, line and value (exit 2), as is a missing key or an unreadable ``observed_at``;
- ``observed_at`` is an ISO 8601 time; one without an offset is taken as UTC.

Rules, applied to all files together: the same key with the same label twice is a *duplicate* (the earliest
observation is kept, each extra row counted); the same key with different labels is *conflicting* (every row of
that key is excluded and counted: the truth is not known).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from tabrepro.contract.grammar import TokenRule, show
from tabrepro.contract.spec import DataContract
from tabrepro.errors import DataError
from tabrepro.io.raw import read_raw
from tabrepro.io.tables import expand_inputs, table_format

OBSERVED_AT, REQUEST_ID, INDEX = "observed_at", "request_id", "index"
LABEL_COLUMNS = ["kind", "key", "y", "observed_at", "source"]
_SHOWN = 5


@dataclass(frozen=True)
class CleanLabels:
    """The labels kept (one row per key) and what the rules took out."""

    labels: pd.DataFrame  # kind ("id" | "request"), key, y (0/1), observed_at (UTC), source ("file:line")
    rows: int
    duplicate_rows: int
    conflicting_keys: int
    conflicting_rows: int


def read_labels(spec: str | Path, contract: DataContract) -> pd.DataFrame:
    """Every label row of the file(s) ``spec`` names, checked; a ``DataError`` lists the first bad ones."""
    frames = [_read_file(path, contract) for path in expand_inputs(spec)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=LABEL_COLUMNS)


def require_binary(contract: DataContract) -> None:
    """Outcomes judge binary models only (issue 21): a ``DataError`` naming the task before any work."""
    if contract.target.task != "binary":
        raise DataError(
            f"outcomes: task {contract.target.task} is not supported (contract {contract.name!r}): live "
            "performance, concept drift and A/B verdicts judge binary models only; nothing was read or written"
        )


def _read_file(path: Path, contract: DataContract) -> pd.DataFrame:
    raw = read_raw(path, fmt=table_format(path, role="labels"))
    kind, keys = _keys(raw, contract, path)
    target = contract.target.column
    if target not in raw.columns or OBSERVED_AT not in raw.columns:
        raise DataError(f"{path}: a label file needs the columns {target!r} and {OBSERVED_AT!r}; has {list(raw)}")
    rule, problems = contract.grammar.target, []
    if not isinstance(rule, TokenRule) or contract.target.task != "binary":
        raise DataError(f"{path}: outcomes judge binary models; this contract's target is {contract.target.task}")
    parsed = [rule.parse(token) for token in raw[target].tolist()]
    for line, token, (value, check) in zip(raw.index, raw[target], parsed, strict=True):
        if check is not None or value is None:
            problems.append(f"{path}:{line}: {target}: {(check or rule.unknown).message(token)}")
    observed = pd.to_datetime(raw[OBSERVED_AT].str.strip(), utc=True, format="ISO8601", errors="coerce")
    for line in raw.index[observed.isna()]:
        problems.append(f"{path}:{line}: {OBSERVED_AT}: expected an ISO 8601 time, got {show(raw[OBSERVED_AT][line])}")
    for line in raw.index[keys.isna()]:
        problems.append(f"{path}:{line}: {kind} key: missing")
    if problems:
        more = f"; and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else ""
        raise DataError(f"{len(problems)} bad label(s): " + "; ".join(sorted(problems)[:_SHOWN]) + more)
    y = [int(value == contract.target.positive) for value, _ in parsed]
    source = [f"{path}:{line}" for line in raw.index]
    return pd.DataFrame(
        {"kind": kind, "key": keys.to_numpy(), "y": y, "observed_at": observed.to_numpy(), "source": source}
    )


def _keys(raw: pd.DataFrame, contract: DataContract, path: Path) -> tuple[str, pd.Series]:
    """("id", the ids) or ("request", "<request_id>:<index>"); stripped; empty is missing (None)."""
    if contract.id_column is not None and contract.id_column in raw.columns:
        return "id", _stripped(raw[contract.id_column])
    if REQUEST_ID not in raw.columns:
        named = f"{contract.id_column!r} or " if contract.id_column else ""
        raise DataError(f"{path}: a label file needs a key column: {named}{REQUEST_ID!r}; has {list(raw)}")
    index = _stripped(raw[INDEX]) if INDEX in raw.columns else pd.Series("0", index=raw.index)
    bad = index.notna() & ~index.fillna("").str.fullmatch(r"[0-9]+")
    if bad.any():
        line = raw.index[bad][0]
        raise DataError(f"{path}:{line}: {INDEX}: expected a whole number >= 0, got {show(raw[INDEX][line])}")
    request = _stripped(raw[REQUEST_ID])
    return "request", (request + ":" + index.fillna("0").astype(int).astype(str)).where(request.notna())


def _stripped(column: pd.Series) -> pd.Series:
    text = column.astype("object").where(column.notna(), None).map(lambda v: None if v is None else str(v).strip())
    return text.where(text != "", None)


def clean_labels(labels: pd.DataFrame) -> CleanLabels:
    """Apply the duplicate and conflict rules: one row per (kind, key), the earliest observation of its label."""
    ordered = labels.sort_values(["observed_at", "source"], kind="stable")
    per_key = ordered.groupby(["kind", "key"], sort=False)["y"].nunique()
    conflicting = per_key[per_key > 1].index
    in_conflict = pd.MultiIndex.from_frame(ordered[["kind", "key"]]).isin(conflicting)
    agreed = ordered[~in_conflict]
    kept = agreed.drop_duplicates(["kind", "key"], keep="first").reset_index(drop=True)
    return CleanLabels(
        labels=kept,
        rows=len(labels),
        duplicate_rows=len(agreed) - len(kept),
        conflicting_keys=len(conflicting),
        conflicting_rows=int(in_conflict.sum()),
    )
