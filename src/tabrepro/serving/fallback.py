"""The fallback model: a second verified serving folder that answers the records a served model's graph fails on.

Declared like the rollout candidate (``serve.fallback.serving_dir``, or ``TABREPRO_FALLBACK_DIR`` at run time: a
serving folder written by ``package``, typically the previous model's ``models/serving``), verified like the primary
(the manifest's seal, the graph's sha256) and refused at start unless its data contract is the primary's (the same
features, target and task), with its own ONNX Runtime session. At run time it only answers when a served model's
``session.run`` raised for a request.

A replica whose fallback answered is *degraded* for ``serve.fallback.degraded_seconds``: ``/readyz`` still answers
200 (it answers every request it can, so a load balancer keeps it in rotation: an input that breaks the main graph
would otherwise take every replica out at once) but with ``{"status": "degraded", "reason": ...}``. The state is
per worker process (each has its own sessions); ``tabrepro_fallback_records_total`` adds them all up.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from tabrepro.serving import telemetry
from tabrepro.serving.errors import Message, Receive, Scope, Send
from tabrepro.serving.predlog import ModelAnswers
from tabrepro.serving.rollout import check_candidate
from tabrepro.serving.runtime import ServingError, ServingModel

log = logging.getLogger(__name__)

READY_PATH = "/readyz"


class ScoringFailed(RuntimeError):
    """No model could answer a request's records (the served model failed and there is no fallback, or it failed
    too): the service answers 503 with this message, never a 500 with a traceback."""


def load_fallback(directory: str, primary: ServingModel, *, providers: list[str] | None) -> ServingModel:
    """The fallback, verified like the primary and refused unless it takes exactly the same records."""
    try:
        fallback = ServingModel(directory, providers=providers)
    except ServingError as exc:
        raise ServingError(f"fallback {directory}: {exc}") from None
    check_candidate(primary.packaged.contract, fallback.packaged.contract, role="fallback")
    if fallback.graph_sha256 == primary.graph_sha256:
        log.warning(
            "the fallback runs the primary's own graph (%s): it will fail where the primary fails", fallback.version
        )
    return fallback


def answer_instead(
    fallback: ServingModel | None, *, failed: tuple[str, str], indices: Sequence[int], records: list[dict[str, Any]]
) -> ModelAnswers:
    """The fallback's answers (role ``fallback``, served) for ``records``, which the served model ``failed`` (its
    role and version) could not score; ScoringFailed when there is no fallback or it fails too."""
    role, version = failed
    what = f"the {role} model {version} failed on {len(records)} record(s)"
    if fallback is None:
        raise ScoringFailed(f"{what} and there is no fallback")
    started = time.perf_counter()
    try:
        probabilities = fallback.scores(records)
    except Exception:
        telemetry.MODEL_ERRORS.labels(role="fallback", model_version=fallback.version).inc()
        log.exception("the fallback %s failed too", fallback.version)
        DEGRADATION.note(f"{what}, and the fallback {fallback.version} too", records=len(records))
        raise ScoringFailed(f"{what}, and the fallback {fallback.version} too") from None
    telemetry.observe_scoring(
        "fallback", fallback.version, time.perf_counter() - started, len(records), fallback.task, probabilities
    )
    telemetry.FALLBACK_RECORDS.labels(failed_role=role, model_version=fallback.version).inc(len(records))
    DEGRADATION.note(f"{what}; the fallback {fallback.version} answered", records=len(records))
    return ModelAnswers(
        fallback.version, fallback.sha256, "fallback", True, fallback.threshold, indices, probabilities,
        fallback.task, fallback.classes,
    )  # fmt: skip


class Degradation:
    """When the fallback last answered (or no model could) and why, in this worker process."""

    def __init__(self, *, window_seconds: float = 300, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_seconds, self._clock = window_seconds, clock
        self._lock = threading.Lock()
        self._last: float | None = None
        self._reason = ""
        self._count = 0

    def note(self, reason: str, *, records: int) -> None:
        """Record one request in which ``records`` records were answered by the fallback (or by no model)."""
        with self._lock:
            self._last, self._reason = self._clock(), reason
            self._count += records

    def reason(self) -> str | None:
        """Why this worker is degraded, or None when nothing fell back within the window."""
        with self._lock:
            if self._last is None or self._clock() - self._last > self.window_seconds:
                return None
            ago = self._clock() - self._last
            return f"{self._reason} ({self._count:,} record(s) since start; the last {ago:.0f} s ago)"


DEGRADATION = Degradation()


class DegradedReadiness:
    """ASGI middleware: a 200 from ``GET /readyz`` becomes ``{"status": "degraded", "reason": ...}`` (still 200)
    while ``state`` (the worker's ``DEGRADATION``) says so; every other answer passes unchanged."""

    def __init__(
        self, app: Callable[[Scope, Receive, Send], Awaitable[None]], *, state: Degradation | None = None
    ) -> None:
        self.app, self.state = app, state or DEGRADATION

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != READY_PATH:
            await self.app(scope, receive, send)
            return
        reason = self.state.reason()
        held: list[Message] = []

        async def rewrite(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 200 and reason is not None:
                held.append(message)
                return
            if not held or message["type"] != "http.response.body":
                await send(message)
                return
            if not message.get("more_body", False):
                body = json.dumps({"status": "degraded", "reason": reason}).encode()
                headers = [(k, v) for k, v in held[0].get("headers", []) if k.lower() not in _DROPPED]
                headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": body, "more_body": False})

        await self.app(scope, receive, rewrite)


_DROPPED = frozenset({b"content-length", b"content-type"})
