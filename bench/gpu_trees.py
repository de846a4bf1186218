"""Tree ensembles as tensor graphs vs ONNX's TreeEnsemble op vs XGBoost's own predictor (prints numbers, asserts
nothing). Issue 14.

    .venv/bin/python bench/gpu_trees.py                    # CPU, one thread: 1, 64, 10k and 1M rows
    .venv/bin/python bench/gpu_trees.py --device cuda      # a GPU machine: CUDA provider at 1M and 10M rows

The packaged Telco model as committed (``models/preprocessor.skops``, ``models/model``; read, never written) is
converted twice in memory: ``to_onnx`` (skl2onnx, ``TreeEnsembleClassifier``) and ``to_tensor_onnx`` (plain
ai.onnx ops after the string encoders). Rows are drawn with replacement from ``data/prepared`` (all splits).
Methods, each on one thread (``--device cpu``; ``--gemm`` adds the tensor trees by the GEMM strategy):
- ``treeensemble graph`` / ``tensor graph``: the whole pipeline graph, raw feeds in (strings for categoricals);
- ``treeensemble trees`` / ``tensor trees``: the model alone, the preprocessed float32 matrix in;
- ``xgboost inplace``: ``Booster.inplace_predict`` on that matrix (the model alone, XGBoost's own predictor).
Batches over ``--chunk`` rows (default 100,000, batch scoring's chunk) are scored chunk by chunk. Small batches
repeat until about ``--seconds`` have passed; rows/s is from the median call.

``--device cuda`` first creates a CUDA session (``get_available_providers`` lists CUDA without a GPU): without
one it says so and exits 2. With one: the same methods at ``--gpu-sizes`` (1M, 10M) on the CUDA provider (XGBoost
with ``device="cuda"``), the node placement of each ONNX graph, and the ratio to the CPU graph on ``--cpu-threads``
(default 2) threads of the same machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

CPU, CUDA = "CPUExecutionProvider", "CUDAExecutionProvider"
ALL = (
    "treeensemble graph",
    "tensor graph",
    "treeensemble trees",
    "tensor trees",
    "tensor trees (gemm)",
    "xgboost inplace",
)


def load_pipeline() -> tuple[object, object, object]:
    from sklearn.pipeline import Pipeline

    from tabrepro.config.params import load_params
    from tabrepro.contract.spec import load_contract
    from tabrepro.io.persistence import load_skops
    from tabrepro.training.modeling import load_model

    contract = load_contract(load_params(REPO / "params.yaml")["data"])
    model, _ = load_model(REPO / "models" / "model")
    pipeline = Pipeline([("pre", load_skops(REPO / "models" / "preprocessor.skops")), ("model", model)])
    return pipeline, model, contract


def trees_only_graphs(model: object, features: int, *, gemm: bool) -> dict[str, bytes]:
    """The model alone on an (n, features) float32 input: skl2onnx's TreeEnsemble and the tensor ops (tree
    traversal, and with ``gemm`` the GEMM strategy too)."""
    from onnx import TensorProto, helper
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    from tabrepro.training.onnx_export import TARGET_OPSET
    from tabrepro.training.tensor_trees import model_nodes

    # the XGBoost converter is registered by to_onnx, called first
    x = [("X", FloatTensorType([None, features]))]
    tree = convert_sklearn(model, initial_types=x, target_opset=TARGET_OPSET, options={id(model): {"zipmap": False}})
    graphs = {"treeensemble trees": tree.SerializeToString()}
    for strategy in ("traversal", "gemm") if gemm else ("traversal",):
        nodes, inits = model_nodes(model, "X", strategy=strategy)
        graph = helper.make_graph(
            nodes,
            "tensor_trees",
            [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, features])],
            [
                helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
                helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2]),
            ],
            inits,
        )
        onx = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
        graphs["tensor trees" if strategy == "traversal" else "tensor trees (gemm)"] = onx.SerializeToString()
    return graphs


def sample_rows(contract: object, rows: int, *, seed: int = 0) -> pd.DataFrame:
    splits = [pd.read_parquet(p) for p in sorted((REPO / "data" / "prepared").glob("*.parquet"))]
    frame = pd.concat(splits, ignore_index=True)
    return frame.iloc[np.random.default_rng(seed).integers(0, len(frame), rows)].reset_index(drop=True)


def session(model: bytes, provider: str, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.log_severity_level = 3
    providers = [provider, CPU] if provider != CPU else [CPU]
    return ort.InferenceSession(model, sess_options=options, providers=providers)


def rows_per_second(run: Callable[[int, int], object], rows: int, *, chunk: int, seconds: float) -> float:
    """Rows/s of ``run(start, stop)`` over ``rows`` rows in chunks; small batches repeated, the median call."""
    run(0, min(rows, chunk))  # warm-up: first runs allocate
    if rows > chunk:
        started = time.perf_counter()
        for start in range(0, rows, chunk):
            run(start, min(start + chunk, rows))
        return rows / (time.perf_counter() - started)
    timings, spent = [], 0.0
    while spent < seconds or len(timings) < 3:
        started = time.perf_counter()
        run(0, rows)
        timings.append(time.perf_counter() - started)
        spent += timings[-1]
    return rows / statistics.median(timings)


def methods(
    pipeline: object,
    model: object,
    contract: object,
    frame: pd.DataFrame,
    *,
    rows: int,
    provider: str,
    threads: int,
    only: set[str],
) -> tuple[dict[str, Callable[[int, int], object]], dict[str, bytes]]:
    """Each method of ``only`` as ``run(start, stop)`` over ``rows`` rows (``frame`` repeated to make them up),
    and the two whole-pipeline graphs."""
    from tabrepro.batch.scoring import feeds_from_frame
    from tabrepro.training.onnx_export import to_onnx, to_tensor_onnx

    copies = -(-rows // len(frame))
    matrix = np.ascontiguousarray(pipeline.named_steps["pre"].transform(frame), dtype=np.float32)
    matrix = np.concatenate([matrix] * copies)
    feeds = {k: np.concatenate([v] * copies) for k, v in feeds_from_frame(frame, contract).items()}
    graphs = {"treeensemble graph": to_onnx(pipeline, contract), "tensor graph": to_tensor_onnx(pipeline, contract)}
    runs: dict[str, Callable[[int, int], object]] = {}
    for name, data in graphs.items():
        if name in only:
            s = session(data, provider, threads)
            runs[name] = lambda a, b, s=s: s.run(["probabilities"], {k: v[a:b] for k, v in feeds.items()})
    for name, data in trees_only_graphs(model, matrix.shape[1], gemm="tensor trees (gemm)" in only).items():
        if name in only:
            s = session(data, provider, threads)
            runs[name] = lambda a, b, s=s: s.run(["probabilities"], {"X": matrix[a:b]})
    if "xgboost inplace" in only:
        booster = model.get_booster()
        booster.set_param({"nthread": threads, "device": "cuda" if provider == CUDA else "cpu"})
        runs["xgboost inplace"] = lambda a, b: booster.inplace_predict(matrix[a:b])
    return runs, graphs


def table(results: dict[str, dict[int, float]], sizes: list[int]) -> str:
    head = f"{'method':<22}" + "".join(f"{f'{n:,} rows':>16}" for n in sizes)
    lines = [head, "-" * len(head)]
    for name, by_size in results.items():
        lines.append(f"{name:<22}" + "".join(f"{by_size[n]:>16,.0f}" for n in sizes))
    return "\n".join(lines)


def measure(
    args: argparse.Namespace, sizes: list[int], *, provider: str, threads: int, only: set[str]
) -> tuple[dict[str, dict[int, float]], dict[str, bytes]]:
    """Rows/s of each method at each size; rows drawn once (at most 1M, repeated beyond)."""
    pipeline, model, contract = load_pipeline()
    frame = sample_rows(contract, min(max(sizes), 1_000_000))
    runs, graphs = methods(
        pipeline, model, contract, frame, rows=max(sizes), provider=provider, threads=threads, only=only
    )
    results: dict[str, dict[int, float]] = {name: {} for name in runs}
    for n in sizes:
        for name, run in runs.items():
            results[name][n] = rows_per_second(run, n, chunk=args.chunk, seconds=args.seconds)
            print(f"  {name} {n:,} rows: {results[name][n]:,.0f} rows/s", file=sys.stderr, flush=True)
    return results, graphs


def gpu_parity(graphs: dict[str, bytes], rows: int = 100_000) -> str:
    """Max |Δp| of the tensor graph on the GPU against the TreeEnsemble graph on the CPU, on ``rows`` rows."""
    from tabrepro.batch.scoring import feeds_from_frame

    _, _, contract = load_pipeline()
    feeds = feeds_from_frame(sample_rows(contract, rows, seed=1), contract)
    on_gpu = session(graphs["tensor graph"], CUDA, 2).run(["probabilities"], feeds)[0][:, 1]
    on_cpu = session(graphs["treeensemble graph"], CPU, 2).run(["probabilities"], feeds)[0][:, 1]
    diff = float(np.max(np.abs(on_gpu.astype(np.float64) - on_cpu)))
    return f"tensor graph on {CUDA} vs TreeEnsemble graph on {CPU}, {rows:,} rows: max |dp| {diff:.3g}"


def cuda_usable() -> bool:
    """Whether a CUDA session really starts here (``get_available_providers`` lists CUDA without a GPU)."""
    if CUDA not in ort.get_available_providers():
        return False
    probe = session(_identity_graph(), CUDA, 1)
    return probe.get_providers()[0] == CUDA


def _identity_graph() -> bytes:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "probe", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 64, 10_000, 1_000_000])
    parser.add_argument("--gpu-sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--chunk", type=int, default=100_000, help="rows per session.run (default: 100000)")
    parser.add_argument("--gpu-chunk", type=int, default=1_000_000, help="rows per session.run on the GPU")
    parser.add_argument("--cpu-threads", type=int, default=2, help="threads of the CPU baseline in --device cuda")
    parser.add_argument("--seconds", type=float, default=0.5, help="time spent per small batch size")
    parser.add_argument("--gemm", action="store_true", help="also the GEMM strategy (always with --device cuda)")
    args = parser.parse_args()
    print(f"onnxruntime {ort.__version__}, providers listed: {ort.get_available_providers()}")
    if args.device == "cpu":
        only = set(ALL) - (set() if args.gemm else {"tensor trees (gemm)"})
        results, _ = measure(args, args.sizes, provider=CPU, threads=1, only=only)
        print("rows/s, one thread, CPU provider (batches over --chunk rows scored chunk by chunk)")
        print(table(results, args.sizes))
        return 0
    if not cuda_usable():
        print("no usable GPU: a CUDA session cannot start here (ONNX Runtime falls back to the CPU); nothing measured")
        return 2
    return measure_cuda(args)


def measure_cuda(args: argparse.Namespace) -> int:
    """The tensor graphs and XGBoost on the GPU at ``--gpu-sizes``; the placement of both whole graphs; the CPU
    baseline (TreeEnsemble graph and XGBoost, ``--cpu-threads`` threads) at the smallest of them (rows/s is flat
    past a chunk, and the TreeEnsemble graph at 10M rows on 2 threads would take minutes)."""
    from tabrepro.onnxrt.placement import node_placement

    threads = args.cpu_threads  # the CPU part of a GPU session (string encoders) gets the baseline's threads
    gpu_only = {"tensor graph", "tensor trees", "tensor trees (gemm)", "xgboost inplace"}
    gpu, graphs = measure(
        argparse.Namespace(**{**vars(args), "chunk": args.gpu_chunk}),
        args.gpu_sizes,
        provider=CUDA,
        threads=threads,
        only=gpu_only,
    )
    for name, data in graphs.items():
        print(f"placement of the {name} on {CUDA}: {node_placement(data, [CUDA, CPU]).describe()}")
    print(gpu_parity(graphs))
    base = min(args.gpu_sizes)
    cpu, _ = measure(args, [base], provider=CPU, threads=threads, only={"treeensemble graph", "xgboost inplace"})
    print(
        f"rows/s on {CUDA} ({threads} CPU threads for its CPU nodes; XGBoost device=cuda; {args.gpu_chunk:,}-row runs)"
    )
    print(table(gpu, args.gpu_sizes))
    print(f"rows/s on {CPU}, {threads} threads, {args.chunk:,}-row runs")
    print(table(cpu, [base]))
    for n in args.gpu_sizes:
        ratio = gpu["tensor graph"][n] / cpu["treeensemble graph"][base]
        print(f"{n:,} rows: tensor graph on the GPU / TreeEnsemble graph on {threads} CPU threads = {ratio:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
