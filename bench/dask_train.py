"""Training on Dask (``train.engine: dask``) on a resampled Telco: time, peak memory per worker, test ROC-AUC
(prints numbers, asserts nothing).

Run:  .venv/bin/python bench/dask_train.py [--rows 5000000] [--workers 2] [--memory-limit 4GiB]

The full Telco table is split as ``prepare`` splits it (params.yaml ``split``); the train and val splits are
resampled with replacement to ``--rows`` and ``--rows * val/train`` rows and written as Parquet parts to a
temporary folder (``--tmp``, default the system's). A ``LocalCluster`` of ``--workers`` processes (1 thread and
``--memory-limit`` each) computes the preprocessing statistics, transforms the partitions and fits
``DaskXGBClassifier`` with the tuned params (``models/best_params.json`` if there, else ``model.candidates.xgboost``)
and their early stopping, then the refit; the result is scored on the untouched Telco test split, next to the
in-memory engine's model fitted on the original (not resampled) train split. Peak memory is each worker
process's resident size, sampled every 0.2 s.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
from sklearn.metrics import roc_auc_score

from tabrepro.config.params import ModelParams, SplitParams, load_params
from tabrepro.contract.spec import DataContract, load_contract
from tabrepro.io.raw import read_raw
from tabrepro.stages.prepare import clean_table, split_data
from tabrepro.training import distributed
from tabrepro.training.features import build_preprocessor, transform_frame
from tabrepro.training.modeling import build_model, fit_model

REPO = Path(__file__).resolve().parents[1]
PART_ROWS = 250_000


def telco_splits(params: dict) -> tuple[DataContract, dict[str, pd.DataFrame]]:
    contract = load_contract({**params["data"], "source": str(REPO / params["data"]["source"])})
    clean, _ = clean_table(read_raw(contract.source, fmt="csv"), contract, source="telco", row_label="line")
    split = SplitParams.model_validate(params["split"])
    return contract, split_data(clean, target=contract.target.column, **split.model_dump())


def write_resampled(frame: pd.DataFrame, folder: Path, rows: int, *, key: str, seed: int) -> Path:
    """``rows`` rows drawn with replacement, as Parquet parts of ``PART_ROWS`` rows (fresh ids)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for number, start in enumerate(range(0, rows, PART_ROWS)):
        size = min(PART_ROWS, rows - start)
        part = frame.iloc[rng.integers(0, len(frame), size)].reset_index(drop=True)
        part[key] = [f"R{start + i:09d}" for i in range(size)]
        part.to_parquet(folder / f"part-{number:04d}.parquet", index=False)
    return folder


class PeakRss(threading.Thread):
    """The largest resident size each of ``pids`` reached while running (sampled)."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.procs = [psutil.Process(p) for p in pids]
        self.peak = dict.fromkeys(pids, 0)
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.2):
            for proc in self.procs:
                self.peak[proc.pid] = max(self.peak[proc.pid], proc.memory_info().rss)


def tuned_params(params: dict) -> tuple[dict, int | None]:
    section = ModelParams.model_validate(params["model"]).family("xgboost")
    best = REPO / "models" / "best_params.json"
    tuned = json.loads(best.read_text()) if best.is_file() else {}
    chosen = tuned["params"] if tuned.get("model") == "xgboost" else dict(section.params)
    return chosen, section.early_stopping_rounds


def train_on_dask(args: argparse.Namespace, contract: DataContract, folders: dict[str, Path], xgb: dict, stop) -> dict:
    import os

    numbers: dict = {}
    with distributed.dask_client(None, workers=args.workers, threads=1, memory_limit=args.memory_limit) as client:
        watch = PeakRss(list(client.run(os.getpid).values()))
        watch.start()
        started = time.perf_counter()
        tables = {s: distributed.read_table(f, partitions=args.workers) for s, f in folders.items()}
        preprocessor = distributed.fit_preprocessor(build_preprocessor(contract), tables["train"])
        numbers["statistics_s"] = time.perf_counter() - started
        target = contract.target.column
        frames = {s: distributed.transform_partitions(preprocessor, t, target=target) for s, t in tables.items()}
        estimator = build_model("xgboost", xgb, seed=42, n_jobs=1)
        fitted = distributed.fit_xgboost(
            client, estimator, frames["train"], frames["val"], target=target, early_stopping_rounds=stop
        )
        numbers["total_s"] = time.perf_counter() - started
        watch.done.set()
        watch.join()
    numbers["best_iteration"] = fitted.best_iteration
    numbers["peak_rss_per_worker_mib"] = sorted(round(v / 2**20) for v in watch.peak.values())
    return {"numbers": numbers, "model": fitted.model, "preprocessor": preprocessor}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000, help="train rows after resampling (default 5M)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="4GiB", help="per worker")
    parser.add_argument("--tmp", default=None, help="where the resampled Parquet parts go")
    args = parser.parse_args()
    params = load_params(REPO / "params.yaml")
    contract, splits = telco_splits(params)
    xgb, stop = tuned_params(params)
    target = contract.target.column
    with tempfile.TemporaryDirectory(dir=args.tmp, prefix="dask_train_") as tmp:
        val_rows = max(1, round(args.rows * len(splits["val"]) / len(splits["train"])))
        folders = {
            "train": write_resampled(splits["train"], Path(tmp) / "train", args.rows, key=contract.key_column, seed=1),
            "val": write_resampled(splits["val"], Path(tmp) / "val", val_rows, key=contract.key_column, seed=2),
        }
        result = train_on_dask(args, contract, folders, xgb, stop)
    test = splits["test"]
    p_dask = result["model"].predict_proba(transform_frame(result["preprocessor"], test).to_numpy())[:, 1]
    in_memory = build_preprocessor(contract).fit(splits["train"])
    x = {s: transform_frame(in_memory, f).to_numpy() for s, f in splits.items()}
    y = {s: f[target].to_numpy() for s, f in splits.items()}
    estimator = build_model("xgboost", xgb, seed=42, n_jobs=1)
    local = fit_model(estimator, x["train"], y["train"], x["val"], y["val"], early_stopping_rounds=stop)
    auc_dask = roc_auc_score(y["test"], p_dask)
    auc_local = roc_auc_score(y["test"], local.model.predict_proba(x["test"])[:, 1])
    n = result["numbers"]
    print(
        f"rows: train {args.rows:,} val {val_rows:,} (resampled Telco), {args.workers} workers x 1 thread, "
        f"memory limit {args.memory_limit} each"
    )
    print(
        f"dask: statistics {n['statistics_s']:.1f} s, total (statistics + transform + fit + refit) "
        f"{n['total_s']:.1f} s, best iteration {n['best_iteration']}"
    )
    print(f"peak RSS per worker (MiB): {n['peak_rss_per_worker_mib']}")
    print(
        f"test ROC-AUC (Telco test split, {len(test)} rows): dask {auc_dask:.4f}; "
        f"in-memory on the original train split {auc_local:.4f} (best iteration {local.best_iteration}); "
        f"difference {auc_dask - auc_local:+.4f}"
    )


if __name__ == "__main__":
    main()
