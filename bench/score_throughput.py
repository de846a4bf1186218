"""Throughput and memory of `tabrepro score` on large files (prints numbers, asserts nothing).

Run after `make repro`:  .venv/bin/python bench/score_throughput.py [--sizes 250000 1000000] [--runs 3]

Builds files of each size by resampling the raw Telco CSV (fresh ids), as CSV and as Parquet, in a temporary
folder, and scores each with `score_file` (the repository's models/serving) in a fresh child process per run:
- per core: ONNX Runtime on 1 intra-op thread and Arrow's CPU and I/O pools at 1 thread;
- all cores: the defaults (ONNX Runtime and Arrow use every core).
Reports the median over runs of rows/s (wall clock) and of rows per CPU-second of the child (user + sys, which
is what a core buys even on a machine shared with other work), and the child's peak RSS, also over its
resident size just before scoring (imports and model loaded): memory must not grow with the file.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
RAW = REPO / "data" / "raw" / "telco_customer_churn.csv"
SERVING = REPO / "models" / "serving"
MODES = {"per core": 1, "all cores": None}


def build_files(folder: Path, sizes: list[int], *, seed: int = 0) -> list[Path]:
    """One CSV and one Parquet file per size: raw rows drawn with replacement, ids made unique."""
    raw = pacsv.read_csv(RAW, convert_options=pacsv.ConvertOptions(column_types=_all_text(RAW)))
    rng = np.random.default_rng(seed)
    files = []
    for size in sizes:
        table = raw.take(rng.integers(0, raw.num_rows, size))
        ids = pa.array([f"B{i:08d}" for i in range(size)])
        table = table.set_column(table.schema.get_field_index("customerID"), "customerID", ids)
        pacsv.write_csv(table, folder / f"rows_{size}.csv")
        pq.write_table(table, folder / f"rows_{size}.parquet")
        files += [folder / f"rows_{size}.csv", folder / f"rows_{size}.parquet"]
    return files


def _all_text(path: Path) -> dict[str, pa.DataType]:
    header = path.open(encoding="utf-8").readline().strip().split(",")
    return dict.fromkeys(header, pa.string())


def _run_once(source: str, output: str, threads: int | None, chunk_rows: int, results: mp.Queue) -> None:
    """In a fresh child: load the model, score, report wall/CPU time and RSS before and at peak (KiB)."""
    import psutil

    from tabrepro.batch.scoring import score_file

    if threads == 1:
        pa.set_cpu_count(1)
        pa.set_io_thread_count(1)
    before = psutil.Process().memory_info().rss // 1024
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    summary = score_file(source, output, serving_dir=SERVING, chunk_rows=chunk_rows, progress=False, threads=threads)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    results.put((summary.rows_read, summary.seconds, cpu, before, _peak_rss_kib()))


def _peak_rss_kib() -> int:
    """This process's own high-water RSS. Not ``ru_maxrss``: Linux carries the parent's peak over fork + exec."""
    with open("/proc/self/status", encoding="ascii") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))


def measure(source: Path, threads: int | None, *, runs: int, chunk_rows: int, scratch: Path) -> dict[str, float]:
    context = mp.get_context("spawn")
    samples = []
    for _ in range(runs):
        queue = context.Queue()
        output = scratch / "scores.parquet"
        child = context.Process(target=_run_once, args=(str(source), str(output), threads, chunk_rows, queue))
        child.start()
        samples.append(queue.get(timeout=1800))  # a crashed child never answers: fail instead of waiting forever
        child.join()
        if child.exitcode != 0:
            raise SystemExit(f"scoring {source} failed in the child (exit {child.exitcode})")
    rows = samples[0][0]
    return {
        "rows": rows,
        "wall_rows_s": statistics.median(rows / s[1] for s in samples),
        "cpu_rows_s": statistics.median(rows / s[2] for s in samples),
        "base_mib": statistics.median(s[3] for s in samples) / 1024,
        "peak_mib": max(s[4] for s in samples) / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[250_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    args = parser.parse_args()
    if not (SERVING / "manifest.json").is_file():
        sys.exit(f"{SERVING}: no packaged model; run `make repro` (or `dvc repro`) first")
    with tempfile.TemporaryDirectory(prefix="score-bench-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        files = build_files(folder, args.sizes)
        print(f"built {len(files)} files in {time.perf_counter() - started:.1f} s; chunk_rows {args.chunk_rows}")
        print(
            f"{'file':<22} {'mode':<10} {'rows/s (wall)':>14} {'rows/CPU-s':>11} {'RSS before':>11} "
            f"{'peak RSS':>9} {'growth':>7}"
        )
        for source in files:
            for mode, threads in MODES.items():
                m = measure(source, threads, runs=args.runs, chunk_rows=args.chunk_rows, scratch=folder)
                print(
                    f"{source.name:<22} {mode:<10} {m['wall_rows_s']:>14,.0f} {m['cpu_rows_s']:>11,.0f} "
                    f"{m['base_mib']:>8.0f} MiB {m['peak_mib']:>5.0f} MiB {m['peak_mib'] - m['base_mib']:>3.0f} MiB",
                    flush=True,
                )
    print(f"medians of {args.runs} runs, each in a fresh process; CPU: {mp.cpu_count()} logical cores")


if __name__ == "__main__":
    main()
