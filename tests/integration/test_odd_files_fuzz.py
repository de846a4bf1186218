"""Fuzz: generated malformed CSV and Parquet files through ``prepare``, ``score``, ``drift`` and ``contract draft``
(in-process ``main()``): every exit is 0 or 2 (drift also 1, its verdict), never 3, never a traceback, and prepare's
outputs are unchanged whenever it refuses. A small, seeded run; ``bench/fuzz_files.py`` runs 2,000 files."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tabrepro.config.params import load_params
from tests.support.odd_files import ALLOWED, COMMANDS, Bench, malformed_csv, malformed_parquet

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = 50  # per format: about 20 s each of the four commands (plus the shared packaged sample)


@pytest.fixture(scope="module")
def bench(packaged: Path, tmp_path_factory: pytest.TempPathFactory) -> Bench:
    return Bench(packaged, tmp_path_factory.mktemp("fuzz"), load_params(REPO / "params.yaml"))


def _check(bench: Bench, data: bytes, suffix: str) -> None:
    path = bench.work / f"fuzz{suffix}"
    path.write_bytes(data)
    before = bench.prepared_digest()
    for command in COMMANDS:
        outcome = bench.run(command, path)
        assert outcome.code in ALLOWED[command], (command, outcome.code, data[:300], outcome.output[-2000:])
        assert "Traceback" not in outcome.output, (command, data[:300], outcome.output[-2000:])
        if command == "prepare" and outcome.code != 0:
            assert bench.prepared_digest() == before, "a failed prepare changed its outputs"


_SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), database=None
)


@_SETTINGS
@given(data=st.data())
def test_malformed_csv_files(bench, data):
    _check(bench, data.draw(malformed_csv(bench.sample)), ".csv")


@_SETTINGS
@given(data=st.data())
def test_malformed_parquet_files(bench, data):
    _check(bench, data.draw(malformed_parquet(bench.sample)), ".parquet")
