"""Fuzz the four readers of raw files with generated malformed CSV and Parquet files (issue 20's acceptance run).

Run:  .venv/bin/python bench/fuzz_files.py [--files 2000] [--rows 600]

Packages a sample of the default data set in a temporary folder (prepare -> package, no tuning), then feeds each
generated file (half CSV, half Parquet: ``tests/support/odd_files.py``'s strategies, seeded) to ``prepare``,
``score``, ``drift`` and ``contract draft`` through their real ``main()`` in this process. Prints the exit codes by
command and format, and checks: no exit 3, no "Traceback" in any output, prepare's outputs unchanged after every
refused run and a ``dvc.lock`` placed in the work folder unchanged at the end. Exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import seed as seeded
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test harness lives in tests/

from tabrepro.config.params import load_params
from tests.conftest import REPO, package_sample
from tests.support.odd_files import ALLOWED, COMMANDS, Bench, malformed_csv, malformed_parquet


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Tally:
    def __init__(self, bench: Bench) -> None:
        self.bench, self.codes, self.failures, self.files = bench, Counter(), [], 0
        self.refused_prepare_changed = 0

    def check(self, data: bytes, suffix: str) -> None:
        path = self.bench.work / f"fuzz{suffix}"
        path.write_bytes(data)
        self.files += 1
        before = self.bench.prepared_digest()
        for command in COMMANDS:
            outcome = self.bench.run(command, path)
            self.codes[(suffix, command, outcome.code)] += 1
            if outcome.code not in ALLOWED[command] or "Traceback" in outcome.output:
                self.failures.append((command, suffix, outcome.code, data[:200], outcome.output[-1500:]))
            if command == "prepare" and outcome.code != 0 and self.bench.prepared_digest() != before:
                self.refused_prepare_changed += 1


def _run(tally: Tally, files: int, *, seed: int) -> None:
    sample = tally.bench.sample
    for fmt, strategy in ((".csv", malformed_csv(sample)), (".parquet", malformed_parquet(sample))):
        _examples(tally, strategy, fmt, files // 2, seed)


def _examples(tally: Tally, strategy: st.SearchStrategy[bytes], fmt: str, count: int, seed: int) -> None:
    @seeded(seed)
    @settings(max_examples=count, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(data=strategy)
    def one(data: bytes) -> None:
        tally.check(data, fmt)

    one()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=2000, help="generated files, half CSV, half Parquet")
    parser.add_argument("--rows", type=int, default=600, help="rows of the packaged sample")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fuzz-files-") as tmp:
        params = load_params(REPO / "params.yaml")
        packaged = package_sample(Path(tmp) / "packaged", params, rows=args.rows)
        bench = Bench(packaged, Path(tmp) / "work", params)
        shutil.copy(REPO / "dvc.lock", bench.work / "dvc.lock")
        lock = _sha(bench.work / "dvc.lock")
        tally, start = Tally(bench), time.perf_counter()
        _run(tally, args.files, seed=args.seed)
        elapsed = time.perf_counter() - start
        lock_changed = _sha(bench.work / "dvc.lock") != lock
    print(f"{tally.files} files ({elapsed:.0f} s, {elapsed / max(tally.files, 1):.2f} s a file, 4 commands each)")
    for (fmt, command, code), n in sorted(tally.codes.items()):
        print(f"  {fmt:9} {command:15} exit {code}: {n}")
    exit3 = sum(n for (_, _, code), n in tally.codes.items() if code == 3)
    print(f"exit 3: {exit3}; outcomes outside 0/2 (drift 0/1/2) or with a traceback: {len(tally.failures)}")
    print(f"refused prepare runs that changed prepare's outputs: {tally.refused_prepare_changed}")
    print(f"dvc.lock changed: {lock_changed}")
    for failure in tally.failures[:5]:
        print("FAIL", failure)
    return 1 if tally.failures or tally.refused_prepare_changed or lock_changed else 0


if __name__ == "__main__":
    sys.exit(main())
