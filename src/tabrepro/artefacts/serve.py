"""Serving settings (params.yaml ``serve``), packaged in the serving manifest and read by the service."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tabrepro.artefacts._base import Record


class PredictionLogParams(Record):
    """The service's JSON-lines log of every scored record (``serve.prediction_log``), rotated by size."""

    enabled: bool = False
    path: str = Field(default="logs/predictions.jsonl", min_length=1)  # relative to the service's working dir
    max_bytes: int = Field(default=52_428_800, ge=1024)
    backups: int = Field(default=5, ge=0, le=1000)
    queue_size: int = Field(default=10_000, ge=1)  # requests waiting for the writer; past it they are dropped


class RolloutParams(Record):
    """A candidate model next to the primary (``serve.rollout``): scored on every request but never returned
    (``shadow``), or answering ``canary_percent`` % of the ids (``canary``, sticky per id)."""

    mode: Literal["off", "shadow", "canary"] = "off"
    candidate_dir: str | None = None
    canary_percent: float = Field(default=0, ge=0, le=100, allow_inf_nan=False)


class FallbackParams(Record):
    """A second verified serving folder that answers a request the served model's graph fails on
    (``serve.fallback``); ``/readyz`` says degraded for ``degraded_seconds`` after it last answered."""

    serving_dir: str | None = None
    degraded_seconds: float = Field(default=300, ge=0, le=86_400, allow_inf_nan=False)


class LimitsParams(Record):
    """What one request may carry (``serve.limits``): a bigger body is refused with 413 before it is parsed, more
    records with 413 before any is validated, a longer text value (an id, a level) with 400 naming the field."""

    max_body_bytes: int = Field(default=16_777_216, ge=1024)
    max_records: int = Field(default=10_000, ge=1)
    max_text_chars: int = Field(default=256, ge=1)


class ServeParams(Record):
    """Serving settings packaged with the model (overridable at run time by environment variables)."""

    providers: tuple[str, ...] = Field(default=("CPUExecutionProvider",), min_length=1)
    workers: int = Field(default=1, ge=1, le=64)  # worker processes of `bentoml serve` (TABREPRO_WORKERS overrides)
    limits: LimitsParams = LimitsParams()
    prediction_log: PredictionLogParams = PredictionLogParams()
    rollout: RolloutParams = RolloutParams()
    fallback: FallbackParams = FallbackParams()
