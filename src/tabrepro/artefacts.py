"""Typed models of every file that crosses stages or leaves the pipeline, and the hashes that seal them.

Writers ``model_dump``, readers ``model_validate``: a renamed or missing key fails where the file is read, naming
the file and the key, instead of turning into a silent ``.get()`` default. The serving settings live here because
they are packaged into the serving manifest; the service imports this module, the contract and the errors only.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class PredictionLogParams(_Record):
    """The service's JSON-lines log of every scored record (``serve.prediction_log``), rotated by size."""

    enabled: bool = False
    path: str = Field(default="logs/predictions.jsonl", min_length=1)  # relative to the service's working dir
    max_bytes: int = Field(default=52_428_800, ge=1024)
    backups: int = Field(default=5, ge=0, le=1000)
    queue_size: int = Field(default=10_000, ge=1)  # requests waiting for the writer; past it they are dropped


class RolloutParams(_Record):
    """A candidate model next to the primary (``serve.rollout``): scored on every request but never returned
    (``shadow``), or answering ``canary_percent`` % of the ids (``canary``, sticky per id)."""

    mode: Literal["off", "shadow", "canary"] = "off"
    candidate_dir: str | None = None
    canary_percent: float = Field(default=0, ge=0, le=100, allow_inf_nan=False)


class ServeParams(_Record):
    """Serving settings packaged with the model (overridable at run time by environment variables)."""

    providers: tuple[str, ...] = Field(default=("CPUExecutionProvider",), min_length=1)
    prediction_log: PredictionLogParams = PredictionLogParams()
    rollout: RolloutParams = RolloutParams()
