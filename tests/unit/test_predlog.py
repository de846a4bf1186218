"""The prediction log: its fixed line format, rotation by size, and requests dropped (and counted) rather than
ever waited for when the queue is full."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Counter

from tabrepro.serving.predlog import LoggedRequest, ModelAnswers, PredictionLog, RotatingFile, format_lines

RECORDS = [
    {"id": "a1", "age": 30.0, "spend": None, "plan": "basic", "active": 1.0},
    {"id": "a2", "age": 41.0, "spend": 3.5, "plan": None, "active": 0.0},
    {"id": None, "age": 25.0, "spend": 0.0, "plan": "pro", "active": 1.0},
]


def _request(n: int = 0, *, shadow: bool = False) -> LoggedRequest:
    everyone = range(len(RECORDS))
    answers = [ModelAnswers("tiny-xgb-1", "aa" * 32, "primary", True, 0.5, everyone, np.array([0.9, 0.2, 0.5]))]
    if shadow:
        answers.append(ModelAnswers("tiny-lr-2", "bb" * 32, "candidate", False, 0.3, [0, 2], np.array([0.4, 0.1])))
    ts = datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC)
    return LoggedRequest(ts, f"{n:032x}", "id", RECORDS, answers)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_one_line_per_record_per_model_in_the_fixed_format():
    lines = [json.loads(b) for b in format_lines(_request(7, shadow=True))]
    assert len(lines) == 5
    assert lines[0] == {
        "ts": "2026-01-02T03:04:05.006000+00:00",
        "request_id": "0" * 31 + "7",
        "model_version": "tiny-xgb-1",
        "model_sha256": "aa" * 32,
        "role": "primary",
        "served": True,
        "id": "a1",
        "index": 0,
        "inputs": RECORDS[0],
        "probability": 0.9,
        "label": 1,
    }
    assert datetime.fromisoformat(lines[0]["ts"]).utcoffset().total_seconds() == 0
    assert [(x["role"], x["served"], x["id"], x["index"], x["label"]) for x in lines[1:]] == [
        ("primary", True, "a2", 1, 0),
        ("primary", True, None, 2, 1),  # at the threshold counts as positive, as in the response
        ("candidate", False, "a1", 0, 1),  # the candidate's own threshold (0.3)
        ("candidate", False, None, 2, 0),
    ]


def test_non_finite_probability_is_refused_not_written_as_invalid_json():
    bad = _request()
    bad.answers[0].probabilities[0] = np.nan
    with pytest.raises(ValueError):
        format_lines(bad)


def test_rotation_by_size_keeps_backups_and_loses_nothing_within_them(tmp_path: Path):
    path = tmp_path / "logs" / "predictions.jsonl"
    longest = max(len(b) for b in format_lines(_request()))
    file = RotatingFile(path, max_bytes=12 * longest, backups=3)
    for n in range(12):  # 36 lines, 12 or a few more to a file: three files, within the limit of 1 + 3
        file.write(format_lines(_request(n)))
    file.close()
    files = [path, path.with_name("predictions.jsonl.1"), path.with_name("predictions.jsonl.2")]
    assert all(f.exists() for f in files) and not path.with_name("predictions.jsonl.3").exists()
    assert all(f.stat().st_size <= 12 * longest for f in files)
    ids = [x["request_id"] for f in reversed(files) for x in _lines(f)]  # oldest file first, every line JSON
    assert ids == [f"{n:032x}" for n in range(12) for _ in range(3)]


def test_rotation_deletes_the_oldest_beyond_backups(tmp_path: Path):
    path = tmp_path / "predictions.jsonl"
    file = RotatingFile(path, max_bytes=1024, backups=2)
    for n in range(200):
        file.write(format_lines(_request(n)))
    file.close()
    names = ["predictions.jsonl.2", "predictions.jsonl.1", "predictions.jsonl"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)
    kept = [x["request_id"] for name in names for x in _lines(tmp_path / name)]
    written = [f"{n:032x}" for n in range(200) for _ in range(3)]
    assert 3 <= len(kept) < len(written) and kept == written[-len(kept) :]  # the newest lines, in order


def test_restart_appends_to_the_current_file(tmp_path: Path):
    path = tmp_path / "predictions.jsonl"
    for n in range(2):
        file = RotatingFile(path, max_bytes=1 << 20, backups=1)
        file.write(format_lines(_request(n)))
        file.close()
    assert [x["request_id"][-1] for x in _lines(path)] == ["0"] * 3 + ["1"] * 3


def test_full_queue_drops_and_counts_instead_of_waiting(tmp_path: Path):
    registry = CollectorRegistry()
    dropped = Counter("dropped", "lines dropped", ["reason"], registry=registry)
    log = PredictionLog(
        tmp_path / "p.jsonl",
        max_bytes=1 << 20,
        backups=1,
        queue_size=2,
        on_drop=lambda reason, n: dropped.labels(reason=reason).inc(n),
    )
    # the writer is not started yet, so nothing leaves the queue: the third and later requests cannot wait
    accepted = [log.submit(_request(n)) for n in range(5)]
    assert accepted == [True, True, False, False, False]
    assert log.dropped == {"queue_full": 9}
    assert registry.get_sample_value("dropped_total", {"reason": "queue_full"}) == 9
    log.start()
    log.close()
    assert [x["request_id"][-1] for x in _lines(tmp_path / "p.jsonl")] == ["0"] * 3 + ["1"] * 3
    assert log.written == 6
    assert not log.submit(_request(9))
    assert log.dropped == {"queue_full": 9, "closed": 3}


def test_close_writes_everything_queued(tmp_path: Path):
    log = PredictionLog(tmp_path / "p.jsonl", max_bytes=1 << 20, backups=1, queue_size=1000).start()
    for n in range(300):
        assert log.submit(_request(n, shadow=True))
    log.close()
    lines = _lines(tmp_path / "p.jsonl")
    assert len(lines) == 300 * 5 and log.written == 1500 and log.dropped == {}
    assert {x["request_id"] for x in lines} == {f"{n:032x}" for n in range(300)}


def test_unwritable_path_fails_at_start(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError):
        PredictionLog(blocker / "p.jsonl", max_bytes=1 << 20, backups=1, queue_size=1)


def test_lines_reach_the_file_soon_without_a_close(tmp_path: Path):
    """A reader tailing the log (the drift check) sees a request's lines within the writer's linger, not at exit."""
    log = PredictionLog(tmp_path / "p.jsonl", max_bytes=1 << 20, backups=1, queue_size=10, linger=0.01).start()
    log.submit(_request(1))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len((tmp_path / "p.jsonl").read_bytes().splitlines()) < 3:
        time.sleep(0.01)
    try:
        assert [x["request_id"][-1] for x in _lines(tmp_path / "p.jsonl")] == ["1"] * 3
    finally:
        log.close()


def test_a_full_disk_counts_every_dropped_line_and_the_writer_ends_cleanly(tmp_path: Path):
    """The kernel's own "no space left on device" (``/dev/full``), not a mock: every line the disk refused is
    counted as dropped (none counted as written), and the writer thread finishes ``close`` without an exception."""
    path = tmp_path / "p.jsonl"
    path.symlink_to("/dev/full")
    died: list[BaseException] = []
    hook, threading.excepthook = threading.excepthook, lambda args: died.append(args.exc_value)
    try:
        log = PredictionLog(path, max_bytes=1 << 20, backups=1, queue_size=100, linger=0.01).start()
        for n in range(20):
            assert log.submit(_request(n))
            time.sleep(0.002 * (n % 3))  # some requests alone, some piled up in one wake-up of the writer
        log.close()
    finally:
        threading.excepthook = hook
    assert died == []
    assert log._thread is not None and not log._thread.is_alive()
    assert log.written == 0
    assert log.dropped == {"write_error": 20 * len(RECORDS)}
    assert path.is_symlink()  # never rotated away: nothing was written
