"""The packaged model's ONNX Runtime sessions for work on many rows: a session with its own number of threads
(``open_session``), and on a Dask worker the one verified model and session it keeps (``worker_model``).

Below batch scoring and drift checks, which both score tables on Dask workers with it; above serving, whose
``ServingModel`` verifies the sealed manifest and the model's sha256.
"""

from __future__ import annotations

import threading
from pathlib import Path

import onnxruntime as ort

from tabrepro.serving.runtime import ServingError, ServingModel

_MODELS: dict[tuple[str, str, str, int], tuple[ServingModel, ort.InferenceSession]] = {}
_MODELS_LOCK = threading.Lock()


def open_session(serving_dir: Path, model: ServingModel, *, threads: int | None) -> ort.InferenceSession:
    """The model's own session, or (``threads`` set) a new one on the same provider with that many intra-op
    threads, built from the model's graph (the one its provider runs) after checking it still has the sha256 the
    manifest packaged."""
    if threads is None:
        return model.session
    data = model.graph_bytes()
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.log_severity_level = 3
    options.enable_cpu_mem_arena = False
    return ort.InferenceSession(data, sess_options=options, providers=model.session.get_providers())


def worker_model(serving_dir: str, sha256: str, *, threads: int = 1) -> tuple[ServingModel, ort.InferenceSession]:
    """This worker's verified model and its session of ``threads`` intra-op threads, opened on first use."""
    from distributed import get_worker

    try:
        worker = get_worker().id
    except ValueError:  # not on a worker (called in the client's process)
        worker = "client"
    key = (worker, serving_dir, sha256, threads)
    with _MODELS_LOCK:
        if key not in _MODELS:
            model = ServingModel(serving_dir)  # checks the manifest's seal and model.onnx's sha256
            if model.sha256 != sha256:
                raise ServingError(
                    f"worker {worker}: {serving_dir} holds model sha256 {model.sha256[:12]}, "
                    f"the run was started with {sha256[:12]}; refusing to score with another model"
                )
            _MODELS[key] = (model, open_session(Path(serving_dir), model, threads=threads))
        return _MODELS[key]
