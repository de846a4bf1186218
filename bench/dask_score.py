"""Scoring a large Parquet dataset on a Dask ``LocalCluster`` against the single-process scorer (prints numbers,
asserts nothing but that both scored the same rows).

Run after `make repro`:  .venv/bin/python bench/dask_score.py [--rows 10000000] [--files 20] [--workers 2]

Builds ``--files`` Parquet files of ``--rows`` rows in all by resampling the raw rows of the Telco test split
(drawn with replacement, fresh ids) in a temporary folder under /tmp, then scores them
- on Dask: a ``LocalCluster`` of ``--workers`` single-threaded worker processes with ``--memory-limit`` each,
  one task per file, each worker's ONNX session on 1 thread (``score_on_dask``, the cluster already started);
- in one process: ``score_file`` on each file in turn in a fresh child, ONNX Runtime on every core (the default).
Reports rows/s (wall clock), rows per CPU-second (user + sys of the workers or of the child: what the work
costs on a machine shared with other jobs), and peak RSS per worker process and of the child.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
RAW = REPO / "data" / "raw" / "telco_customer_churn.csv"
TEST_SPLIT = REPO / "data" / "prepared" / "test.parquet"
SERVING = REPO / "models" / "serving"  # default of --serving-dir


def build_files(folder: Path, *, rows: int, files: int, seed: int = 0) -> list[Path]:
    """``files`` Parquet files of raw test-split rows (as text) drawn with replacement, ids made unique."""
    header = RAW.open(encoding="utf-8").readline().strip().split(",")
    raw = pacsv.read_csv(RAW, convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(header, pa.string())))
    test_ids = pq.read_table(TEST_SPLIT, columns=["customerID"]).column(0).to_pylist()
    test = raw.filter(pc.is_in(raw.column("customerID"), value_set=pa.array(test_ids)))
    rng = np.random.default_rng(seed)
    paths, start = [], 0
    for i, size in enumerate(np.diff(np.linspace(0, rows, files + 1).astype(int))):
        table = test.take(rng.integers(0, test.num_rows, size))
        ids = pa.array([f"D{n:09d}" for n in range(start, start + size)])
        table = table.set_column(table.schema.get_field_index("customerID"), "customerID", ids)
        paths.append(folder / "in" / f"part-{i:03d}.parquet")
        paths[-1].parent.mkdir(exist_ok=True)
        pq.write_table(table, paths[-1], row_group_size=100_000)
        start += size
    return paths


def _peak_rss_mib() -> float:
    """This process's own high-water RSS (``VmHWM``; ``ru_maxrss`` would carry a parent's peak over fork)."""
    with open("/proc/self/status", encoding="ascii") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def on_dask(folder: Path, serving: Path, *, workers: int, memory_limit: str, chunk_rows: int) -> dict[str, float]:
    from distributed import Client, LocalCluster

    from tabrepro.batch.distributed import score_on_dask

    started = time.perf_counter()
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            memory_limit=memory_limit,
            dashboard_address=":0",
        ) as cluster,
        Client(cluster) as client,
    ):
        cluster_s = time.perf_counter() - started
        cpu_before = client.run(_cpu_seconds)
        begin = time.perf_counter()
        summary = score_on_dask(
            folder / "in", folder / "dask_out", serving_dir=serving, client=client, chunk_rows=chunk_rows
        )
        wall = time.perf_counter() - begin
        cpu = sum(client.run(_cpu_seconds).values()) - sum(cpu_before.values())
        peaks = sorted(client.run(_peak_rss_mib).values())
    return {"rows": summary.rows_scored, "wall": wall, "cpu": cpu, "peaks": peaks, "cluster_s": cluster_s}


def _single_child(sources: list[str], output: str, serving: str, chunk_rows: int, results: mp.Queue) -> None:
    from tabrepro.batch.scoring import score_file

    cpu0, scored, begin = _cpu_seconds(), 0, time.perf_counter()
    for source in sources:
        summary = score_file(source, output, serving_dir=serving, chunk_rows=chunk_rows, progress=False)
        scored += summary.rows_scored
    results.put((scored, time.perf_counter() - begin, _cpu_seconds() - cpu0, _peak_rss_mib()))


def single_process(files: list[Path], folder: Path, serving: Path, *, chunk_rows: int) -> dict[str, float]:
    context = mp.get_context("spawn")
    queue = context.Queue()
    child = context.Process(
        target=_single_child,
        args=([str(f) for f in files], str(folder / "single.parquet"), str(serving), chunk_rows, queue),
    )
    child.start()
    rows, wall, cpu, peak = queue.get(timeout=7200)
    child.join()
    return {"rows": rows, "wall": wall, "cpu": cpu, "peaks": [peak]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="1GiB")
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--serving-dir", type=Path, default=SERVING)
    args = parser.parse_args()
    serving = args.serving_dir.absolute()
    if not (serving / "manifest.json").is_file():
        sys.exit(f"{serving}: no packaged model; run `make repro` (or `dvc repro`) first")
    with tempfile.TemporaryDirectory(prefix="dask-score-bench-", dir="/tmp") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        files = build_files(folder, rows=args.rows, files=args.files)
        print(f"built {args.rows:,} rows in {len(files)} Parquet files in {time.perf_counter() - started:.1f} s")
        dask = on_dask(
            folder, serving, workers=args.workers, memory_limit=args.memory_limit, chunk_rows=args.chunk_rows
        )
        single = single_process(files, folder, serving, chunk_rows=args.chunk_rows)
        if dask["rows"] != single["rows"]:
            sys.exit(f"scored rows differ: Dask {dask['rows']:,}, one process {single['rows']:,}")
        print(f"{'scorer':<44} {'rows/s (wall)':>14} {'rows/CPU-s':>11}  peak RSS per process")
        label = f"Dask, {args.workers} workers x 1 thread, {args.memory_limit} each"
        for name, m in ((label, dask), ("one process, ONNX Runtime on every core", single)):
            peaks = ", ".join(f"{p:.0f} MiB" for p in m["peaks"])
            print(f"{name:<44} {m['rows'] / m['wall']:>14,.0f} {m['rows'] / m['cpu']:>11,.0f}  {peaks}")
        ratio = single["wall"] / dask["wall"]
        print(f"Dask / one process: {ratio:.2f}x rows/s (wall); cluster start {dask['cluster_s']:.1f} s, not counted")
    print(f"one run each; CPU: {mp.cpu_count()} logical cores")


if __name__ == "__main__":
    main()
