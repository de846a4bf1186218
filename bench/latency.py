"""In-process latency of the packaged ONNX model vs the fitted scikit-learn pipeline, and batch throughput.

Run after `make repro`:  .venv/bin/python bench/latency.py [--rows 2000]

Single row: the service's own path (a validated record dict -> ONNX feeds -> session.run) against
`pipeline.predict_proba` on a one-row DataFrame. Batch: 10,000 records in one call. Prints medians (p50) and p99.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from tabrepro.config.params import PathsParams, load_params, read_section
from tabrepro.contract.spec import load_contract
from tabrepro.io.persistence import load_skops
from tabrepro.io.splits import read_splits
from tabrepro.serving.runtime import ServingModel, feeds_from_records
from tabrepro.training.modeling import load_model
from tabrepro.training.onnx_export import frame_to_records


def _timings(fn: Callable[[Any], object], items: list) -> np.ndarray:
    for item in items[:50]:
        fn(item)
    out = []
    for item in items:
        started = time.perf_counter()
        fn(item)
        out.append((time.perf_counter() - started) * 1e6)
    return np.array(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2000)
    args = parser.parse_args()
    params = load_params()
    paths = read_section(params, "paths", PathsParams)
    contract = load_contract(params["data"])
    served = ServingModel(paths.serving)
    model, _ = load_model(paths.model)
    pipeline = Pipeline([("pre", load_skops(paths.preprocessor)), ("model", model)])
    test = pd.concat(read_splits(paths.prepared).values(), ignore_index=True)
    frames = [test.iloc[[i % len(test)]] for i in range(args.rows)]
    records = frame_to_records(test, contract)
    rows = [records[i % len(records)] for i in range(args.rows)]

    def onnx_row(r: dict) -> list:
        return served.session.run(["probabilities"], feeds_from_records([r], contract))

    onnx_t = _timings(onnx_row, rows)
    skl_t = _timings(lambda f: pipeline.predict_proba(f), frames)
    batch = [records[i % len(records)] for i in range(10_000)]
    started = time.perf_counter()
    served.predict_proba(batch)
    batch_s = time.perf_counter() - started
    print(f"model {served.version} on {served.provider}; {args.rows} single-row calls each\n")
    print("| path | p50 µs | p99 µs |\n|---|---|---|")
    print(f"| ONNX Runtime, feeds from a dict | {np.median(onnx_t):.1f} | {np.percentile(onnx_t, 99):.1f} |")
    print(f"| scikit-learn pipeline, 1-row DataFrame | {np.median(skl_t):.1f} | {np.percentile(skl_t, 99):.1f} |")
    print(f"\nratio of medians (scikit-learn / ONNX): {np.median(skl_t) / np.median(onnx_t):.1f}x")
    print(f"batch of 10,000 records in one call: {batch_s * 1e3:.1f} ms = {10_000 / batch_s:,.0f} rows/s")


if __name__ == "__main__":
    main()
