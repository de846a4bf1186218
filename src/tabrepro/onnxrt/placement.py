"""Which packaged graph runs on which execution provider, and where ONNX Runtime actually placed its nodes.

A serving folder may hold two graphs of the same pipeline (``package`` proves both equal to it): ``model.onnx``
(skl2onnx's ``TreeEnsembleClassifier``: fast on the CPU, but the CUDA provider has no kernel for ``ai.onnx.ml``
ops and leaves it on the CPU) and ``model_tensor.onnx`` (plain ``ai.onnx`` tensor ops after the string encoders).
The manifest's ``graphs`` maps a provider to its graph; ``graph_for`` reads it (old manifests: model.onnx).

Placement is read, not assumed: ``node_placement`` runs the graph once in a profiling session and counts the
nodes of each provider from the profile's kernel events (``args.provider``), after ONNX Runtime's own graph
partitioning (so copy nodes between devices are counted too).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from tabrepro.artefacts import ServingManifest
from tabrepro.onnxrt.session import CPU

MODEL_FILE, TENSOR_FILE = "model.onnx", "model_tensor.onnx"


@dataclass(frozen=True)
class Placement:
    """Nodes of a session's graph per execution provider, and the op types of those off the first provider."""

    provider: str  # the provider the session runs on first
    nodes: dict[str, int]
    off_provider: dict[str, int] = field(default_factory=dict)  # op type -> nodes not on ``provider``

    @property
    def total(self) -> int:
        return sum(self.nodes.values())

    def describe(self) -> str:
        counts = ", ".join(f"{n} on {p}" for p, n in sorted(self.nodes.items(), key=lambda kv: -kv[1]))
        off = f" (elsewhere: {dict(sorted(self.off_provider.items()))})" if self.off_provider else ""
        return f"{self.total} nodes: {counts}{off}"


def graph_for(manifest: ServingManifest, provider: str) -> tuple[str, str]:
    """(file, sha256) of the graph ``manifest`` gives ``provider``: its own entry, else the CPU's, else model.onnx.
    model.onnx is always checked against ``onnx_sha256``, the packaged model's identity."""
    graphs = manifest.graphs or {}
    chosen = graphs.get(provider) or graphs.get(CPU)
    if chosen is None or chosen.file == MODEL_FILE:
        return MODEL_FILE, manifest.onnx_sha256
    return chosen.file, chosen.sha256


def dummy_feeds(session: ort.InferenceSession) -> dict[str, np.ndarray]:
    """One row of zeros (numbers) or "" (text) per graph input: enough to run every node once."""
    feeds = {}
    for spec in session.get_inputs():
        shape = [d if isinstance(d, int) else 1 for d in spec.shape]
        feeds[spec.name] = (
            np.full(shape, "", dtype=object) if spec.type == "tensor(string)" else np.zeros(shape, dtype=np.float32)
        )
    return feeds


def node_placement(model: bytes, providers: Sequence[str]) -> Placement:
    """Run ``model`` once on ``providers`` with profiling on; count its nodes per provider from the profile."""
    folder = Path(tempfile.mkdtemp(prefix="tabrepro-placement-"))
    try:
        options = ort.SessionOptions()
        options.enable_profiling = True
        options.profile_file_prefix = str(folder / "profile")
        options.log_severity_level = 3
        session = ort.InferenceSession(model, sess_options=options, providers=list(providers))
        session.run(None, dummy_feeds(session))
        events = json.loads(Path(session.end_profiling()).read_text(encoding="utf-8"))
        first = session.get_providers()[0]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return placement_from_profile(events, first)


def placement_from_profile(events: list[dict[str, Any]], provider: str) -> Placement:
    """Count each node once (its ``*_kernel_time`` event) by the provider ONNX Runtime ran it on."""
    kernels = {
        e["name"]: e["args"]
        for e in events
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time") and "provider" in e.get("args", {})
    }
    nodes = Counter(args["provider"] for args in kernels.values())
    off = Counter(args.get("op_name", "?") for args in kernels.values() if args["provider"] != provider)
    return Placement(provider=provider, nodes=dict(nodes), off_provider=dict(off))
