"""Labels in and the join: each anomaly counted exactly, bad labels named by file, line and value."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from tabrepro.contract.spec import DataContract
from tabrepro.errors import DataError
from tabrepro.outcomes.join import join_outcomes, window_start
from tabrepro.outcomes.labels import clean_labels, read_labels
from tabrepro.outcomes.performance import measure
from tabrepro.outcomes.predictions import PREDICTION_COLUMNS, _frame, prediction_files, read_predictions
from tabrepro.outcomes.settings import OutcomesParams


def _predictions(rows: list[tuple]) -> pd.DataFrame:
    return _frame(rows)


PREDICTIONS = [  # ts, model_version, role, id, request_key, probability
    ("2026-01-01T10:00:00+00:00", "v1", "primary", "a1", "r1:0", 0.9),
    ("2026-01-01T10:00:00+00:00", "v2", "shadow", "a1", "r1:0", 0.8),
    ("2026-01-02T10:00:00+00:00", "v1", "primary", "a2", "r2:0", 0.2),
    ("2026-01-02T10:00:00+00:00", "v1", "primary", "a3", "r2:1", 0.6),
    ("2026-01-03T10:00:00+00:00", "v1", "primary", "a4", "r3:0", 0.4),
    ("2026-01-03T10:00:00+00:00", "v1", "primary", "a5", "r4:0", 0.7),
    ("2026-01-04T10:00:00+00:00", "v1", "primary", "a5", "r5:0", 0.75),  # a5 scored again
    ("2026-01-20T10:00:00+00:00", "v1", "primary", "a6", "r6:0", 0.3),
    ("2026-01-03T10:00:00+00:00", "v1", "primary", None, "r7:0", 0.1),  # no id: keyed by request
]

LABELS = """customerID,y,observed_at
a1,yes,2026-01-05T00:00:00Z
a2,no,2026-01-06
a2,no,2026-01-07
a3,yes,2026-01-06
a3,no,2026-01-08
a4,yes,2026-03-30
a5,no,2026-01-04T12:00:00Z
a6,yes,2026-01-10
zz,no,2026-01-06
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def contract(tiny_contract: DataContract) -> DataContract:
    return DataContract.model_validate({**tiny_contract.model_dump(), "id_column": "customerID"})


def test_every_anomaly_is_counted_exactly(tmp_path: Path, contract: DataContract) -> None:
    labels = read_labels(_write(tmp_path, "labels.csv", LABELS), contract)
    result = join_outcomes(_predictions(PREDICTIONS), clean_labels(labels), days=7, deadline=30)
    c = result.counts
    # a2 twice (same label): 1 duplicate; a3 twice (yes, no): 2 conflicting rows of 1 key; zz unknown;
    # a6 observed before it was scored: early; a4 observed 30 days after its window's end: late.
    assert (c.rows, c.duplicate, c.conflicting, c.conflicting_keys) == (9, 1, 2, 1)
    assert (c.unknown, c.early, c.late, c.on_time) == (1, 1, 1, 3)
    assert c.rows == c.duplicate + c.conflicting + c.unknown + c.early + c.late + c.on_time
    on_time = result.joined[result.joined["status"] == "on_time"]
    # a1 labels the primary and the shadow; a5 labels its latest prediction before the label (0.75, 04 Jan)
    assert sorted(zip(on_time["key"], on_time["role"], on_time["probability"], strict=True)) == [
        ("a1", "primary", 0.9),
        ("a1", "shadow", 0.8),
        ("a2", "primary", 0.2),
        ("a5", "primary", 0.75),
    ]


def test_request_keys_label_records_without_an_id(tmp_path: Path, contract: DataContract) -> None:
    text = "request_id,index,y,observed_at\nr7,0,yes,2026-01-05\nr9,,no,2026-01-05\n"
    labels = read_labels(_write(tmp_path, "by_request.csv", text), contract)
    result = join_outcomes(_predictions(PREDICTIONS), clean_labels(labels), days=7, deadline=30)
    assert (result.counts.on_time, result.counts.unknown) == (1, 1)
    assert result.joined["probability"].tolist() == [0.1]


def test_windows_and_predicted_counts(contract: DataContract) -> None:
    ts = pd.Series(pd.to_datetime(["1970-01-07T23:59:59Z", "1970-01-08T00:00:00Z"], utc=True))
    assert window_start(ts, days=7).dt.day.tolist() == [1, 8]
    frame = _predictions(PREDICTIONS)
    labels = clean_labels(read_labels_frame())
    result = join_outcomes(frame, labels, days=7, deadline=30)
    predicted = result.predicted.set_index(["model_version", "role"]).groupby(level=[0, 1])["predicted"].sum()
    assert predicted[("v1", "primary")] == 7  # a5 twice in one window counts once: a1..a6 and r7:0
    assert predicted[("v2", "shadow")] == 1


def read_labels_frame() -> pd.DataFrame:
    stamp = pd.Timestamp("2026-01-05", tz="UTC")
    return pd.DataFrame({"kind": ["id"], "key": ["a1"], "y": [1], "observed_at": [stamp], "source": ["x:2"]})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("customerID,y,observed_at\na1,yes,2026-01-05\na2,maybe,2026-01-05\n", "labels.csv:3: y: expected one of"),
        ("customerID,y,observed_at\na1,yes,yesterday\n", "labels.csv:2: observed_at: expected an ISO 8601 time"),
        ("customerID,y,observed_at\n ,yes,2026-01-05\n", "labels.csv:2: id key: missing"),
        ("customerID,target,observed_at\na1,yes,2026-01-05\n", "needs the columns 'y' and 'observed_at'"),
        ("who,y,observed_at\na1,yes,2026-01-05\n", "needs a key column: 'customerID' or 'request_id'"),
    ],
)
def test_bad_labels_are_named(tmp_path: Path, contract: DataContract, text: str, message: str) -> None:
    with pytest.raises(DataError, match=message.replace("(", r"\(")) as caught:
        read_labels(_write(tmp_path, "labels.csv", text), contract)
    if "maybe" in text:
        assert "'maybe'" in str(caught.value)


def test_prediction_columns_are_fixed() -> None:
    assert list(_predictions([]).columns) == PREDICTION_COLUMNS


def test_live_performance_counts_coverage_and_late_labels(tmp_path: Path, contract: DataContract) -> None:
    labels = read_labels(_write(tmp_path, "labels.csv", LABELS), contract)
    result = join_outcomes(_predictions(PREDICTIONS), clean_labels(labels), days=7, deadline=30)
    windows = measure(result, OutcomesParams(bootstrap=20))
    first = next(w for w in windows if (w.model_version, w.role) == ("v1", "primary"))
    assert first.window.startswith("2026-01-01")
    # a1..a5 and r7:0 scored; a1, a2, a5 labelled on time (a3 conflicting, a4 late)
    assert (first.predicted, first.labelled, first.late, first.positives) == (6, 3, 1, 1)
    assert first.coverage == pytest.approx(0.5)
    assert first.metrics["roc_auc"].value == pytest.approx(1.0)
    shadow = next(w for w in windows if w.role == "shadow")
    assert shadow.metrics["roc_auc"].value is None  # one label: no AUC, and no CI pretending otherwise


def test_score_outputs_are_batch_predictions_at_the_time_given(tmp_path: Path, contract: DataContract) -> None:
    scores = pd.DataFrame(
        {"customerID": ["a1", "a2"], "probability": [0.9, 0.2], "label": [1, 0], "model_version": ["v1", "v1"]}
    )
    scores.to_parquet(tmp_path / "scores.parquet", index=False)
    kind, files = prediction_files(tmp_path / "scores.parquet")
    when = datetime(2026, 1, 2, tzinfo=UTC)
    frame = read_predictions(kind, files[0], contract, scored_at=when)
    assert (kind, frame["role"].tolist(), frame["id"].tolist()) == ("scores", ["batch", "batch"], ["a1", "a2"])
    assert frame["ts"].tolist() == [pd.Timestamp(when)] * 2
    scores.drop(columns="model_version").to_csv(tmp_path / "broken.csv", index=False)
    with pytest.raises(
        DataError, match=r"broken.csv: not a `tabrepro score` output: missing column\(s\) \['model_version'\]"
    ):
        read_predictions("scores", tmp_path / "broken.csv", contract)


def test_a_corrupt_log_line_is_named(tmp_path: Path, contract: DataContract) -> None:
    log = tmp_path / "predictions.jsonl"
    log.write_text('{"ts": "2026-01-01T00:00:00+00:00"}\n', encoding="utf-8")
    with pytest.raises(DataError, match="predictions.jsonl:1: not a prediction log record"):
        read_predictions("log", log, contract)
