"""An ONNX Runtime session on the first execution provider that actually works here."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import onnxruntime as ort

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
GPU_PROVIDERS = ("CUDAExecutionProvider",)  # the providers the tensor graph is built for


def create_session(model: bytes, providers: Sequence[str]) -> ort.InferenceSession:
    """An ONNX Runtime session on the first of ``providers`` that actually works.

    ``ort.get_available_providers()`` lists CUDA even without a GPU; creating the session is the real test (ORT
    falls back to CPU when CUDA cannot start), so the provider that runs is read back from the session.
    """
    requested = [p for p in providers if p in ort.get_available_providers()] or [CPU]
    if CPU not in requested:
        requested.append(CPU)
    options = ort.SessionOptions()
    options.log_severity_level = 3  # the CUDA fallback warning is reported by us, once
    session = ort.InferenceSession(model, sess_options=options, providers=requested)
    if session.get_providers()[0] != requested[0]:
        log.warning("%s is not usable here; running on %s", requested[0], session.get_providers()[0])
    return session
