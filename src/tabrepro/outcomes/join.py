"""Labels joined to predictions by key, with every label accounted for exactly once.

Rules (beyond the duplicate and conflict rules of ``labels``), for each label kept:
- *unknown*: no prediction has its key (a record id, or a request id and index);
- *early*: every prediction of its key was made after the label was observed (it cannot be their outcome);
- otherwise it labels, for each model version and role, that model's latest prediction of the key made at or
  before the label was observed. Its window is that of the latest of those predictions; it is *late* when it was
  observed after the window's end plus ``label_deadline_days`` (counted, not scored), else *on time*.
So ``rows = duplicate + conflicting + unknown + early + late + on_time``, each label counted once.

The join runs in one process on a frame, or on Dask over one partition per file: each partition keeps only the
predictions whose key has a label (and counts the records of each window, model and role), so only labelled
predictions are gathered; the same ``settle`` then gives the same result either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from tabrepro.contract.spec import DataContract
from tabrepro.outcomes.labels import CleanLabels
from tabrepro.outcomes.predictions import empty_predictions, read_predictions

GROUP = ["window", "model_version", "role"]
_DAY_NS = 86_400 * 10**9


class JoinCounts(BaseModel):
    """What became of every label row (see the module doc for the rules)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rows: int
    duplicate: int
    conflicting: int
    conflicting_keys: int
    unknown: int
    early: int
    late: int
    on_time: int


@dataclass(frozen=True)
class JoinResult:
    counts: JoinCounts
    joined: pd.DataFrame  # one row per labelled prediction: GROUP, probability, y, status ("on_time" | "late")
    predicted: pd.DataFrame  # GROUP + "predicted": distinct records each model scored in each window


def window_start(ts: pd.Series, *, days: float) -> pd.Series:
    """The start of the window each time stamp falls in; windows of ``days`` aligned to 1970-01-01 UTC."""
    width = round(days * _DAY_NS)
    ns = ts.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    return pd.Series(pd.to_datetime(ns - ns % width, utc=True), index=ts.index)


def match_labels(predictions: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """The predictions whose key has a label, with the label's columns (one partition at a time on Dask)."""
    parts = []
    for kind, column in (("id", "id"), ("request", "request_key")):
        these = labels[labels["kind"] == kind]
        parts.append(predictions.merge(these, left_on=column, right_on="key", how="inner"))
    return pd.concat(parts, ignore_index=True)


def record_groups(predictions: pd.DataFrame, *, days: float) -> pd.DataFrame:
    """(window, model_version, role, record): a record is its id, or its request key when it has none."""
    record = predictions["id"].where(predictions["id"].notna(), predictions["request_key"])
    return pd.DataFrame(
        {
            "window": window_start(predictions["ts"], days=days),
            "model_version": predictions["model_version"],
            "role": predictions["role"],
            "record": record,
        }
    )


def count_predicted(groups: Any) -> Any:
    """Distinct records per window, model and role (pandas or Dask alike)."""
    return groups.drop_duplicates().groupby(GROUP).size()


def settle(
    matched: pd.DataFrame, clean: CleanLabels, predicted: pd.Series, *, days: float, deadline: float
) -> JoinResult:
    """Apply the rules to the labelled predictions; see the module doc."""
    labels = clean.labels
    before = matched[matched["ts"] <= matched["observed_at"]]
    latest = (
        before.sort_values(["ts", "request_key"], kind="stable")
        .groupby(["kind", "key", "model_version", "role"], sort=False)
        .tail(1)
    )
    reference = latest.groupby(["kind", "key"])["ts"].transform("max")
    due = window_start(reference, days=days) + pd.Timedelta(days=days + deadline)
    joined = latest.assign(
        window=window_start(latest["ts"], days=days),
        status=np.where(latest["observed_at"] > due, "late", "on_time"),
    )
    status = joined.drop_duplicates(["kind", "key"])["status"].value_counts()
    n_matched = len(matched.drop_duplicates(["kind", "key"]))
    n_before = len(before.drop_duplicates(["kind", "key"]))
    counts = JoinCounts(
        rows=clean.rows,
        duplicate=clean.duplicate_rows,
        conflicting=clean.conflicting_rows,
        conflicting_keys=clean.conflicting_keys,
        unknown=len(labels) - n_matched,
        early=n_matched - n_before,
        late=int(status.get("late", 0)),
        on_time=int(status.get("on_time", 0)),
    )
    columns = [*GROUP, "ts", "kind", "key", "probability", "y", "status"]
    ordered = joined[columns].sort_values([*GROUP, "kind", "key"], kind="stable").reset_index(drop=True)
    return JoinResult(counts, _plain(ordered), _plain(predicted.rename("predicted").reset_index()))


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as objects: Dask hands them back as pandas strings, and both joins must give one result."""
    return frame.astype({c: "object" for c in frame.columns if isinstance(frame[c].dtype, pd.StringDtype)})


def join_outcomes(predictions: pd.DataFrame, clean: CleanLabels, *, days: float, deadline: float) -> JoinResult:
    """The join in one process."""
    matched = match_labels(predictions, clean.labels)
    predicted = count_predicted(record_groups(predictions, days=days))
    return settle(matched, clean, predicted, days=days, deadline=deadline)


def join_outcomes_dask(
    kind: str,
    files: list[Path],
    contract: DataContract,
    clean: CleanLabels,
    *,
    days: float,
    deadline: float,
    client: Any,
    scored_at: datetime | None = None,
) -> JoinResult:
    """The join on Dask: one partition per prediction file, read on the workers; only labelled rows come back."""
    import dask.dataframe as dd
    from dask.delayed import delayed

    parts = [delayed(read_predictions)(kind, path, contract, scored_at=scored_at) for path in files]
    frame = dd.from_delayed(parts, meta=empty_predictions(), verify_meta=False)
    meta_matched = match_labels(empty_predictions(), clean.labels.iloc[:0])
    matched = frame.map_partitions(match_labels, clean.labels, meta=meta_matched)
    groups = frame.map_partitions(record_groups, days=days, meta=record_groups(empty_predictions(), days=days))
    matched_pd, predicted = client.gather(client.compute([matched, count_predicted(groups)]))
    return settle(matched_pd, clean, predicted, days=days, deadline=deadline)
