"""The service's HTTP edge: what a request may be before BentoML reads it, and what a refused one leaves behind.

- ``RequestGuard`` (an ASGI middleware) refuses a ``POST /predict`` whose Content-Type is not JSON (415) and a body
  over ``serve.limits.max_body_bytes`` (413), by its Content-Length or, for a streamed (chunked) body, as soon as
  the bytes read pass the limit: nothing over the limit is ever parsed or held in memory.
- ``PredictRequest`` is the request model: ``{"records": [...]}`` and nothing else (an unknown top-level key is a
  400); its JSON Schema carries the contract's record (``records.items``), so the OpenAPI document describes one.
- ``bound_http_metrics`` keeps BentoML's per-path HTTP metrics to the service's own routes: any other path is
  answered (404) without a series of its own, and counted in ``tabrepro_unknown_path_requests_total``.
- ``ClientErrorLog`` turns BentoML's "Exception on /predict" ERROR with a traceback, logged for every refused
  request, into one WARNING line with the status and a truncated reason (and the 503 of an un-ready service into
  one ERROR line: its reason was logged with the start-up fault).

The limits and the record schema are set once per worker by the service (``configure``); until then the
defaults of ``LimitsParams`` apply.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import bentoml
from pydantic import ConfigDict, Field, ValidationError

from tabrepro.artefacts import LimitsParams
from tabrepro.serving import telemetry

log = logging.getLogger("tabrepro.serving")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PREDICT = "/predict"
# every path the service answers; only these get BentoML's per-path HTTP metrics
ROUTES = frozenset({PREDICT, "/", "/docs.json", "/schema.json", "/metrics", "/healthz", "/livez", "/readyz"})
_LOGGED_CHARS = 300


@dataclass
class GuardSettings:
    """The limits of this worker and the JSON Schema of one record (None until the model is loaded)."""

    limits: LimitsParams = field(default_factory=LimitsParams)
    record_schema: dict[str, Any] | None = None


SETTINGS = GuardSettings()


def configure(limits: LimitsParams, record_schema: dict[str, Any] | None) -> None:
    """Set this worker's limits and record schema (the service calls it once it has read its manifest)."""
    SETTINGS.limits, SETTINGS.record_schema = limits, record_schema


class PredictRequest(bentoml.IODescriptor):
    """The body of ``POST /predict``."""

    model_config = ConfigDict(extra="forbid")

    records: list[Any] = Field(description="the records to score, each validated by the data contract")

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        schema = super().model_json_schema(*args, **kwargs)
        records = schema.get("properties", {}).get("records")
        if records is not None and SETTINGS.record_schema is not None:
            records |= {"items": SETTINGS.record_schema, "minItems": 1, "maxItems": SETTINGS.limits.max_records}
        return schema


class RequestGuard:
    """ASGI middleware in front of ``POST /predict``: JSON only, and a bounded body read before BentoML parses it."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PREDICT or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        limit = SETTINGS.limits.max_body_bytes
        problem = _content_type_problem(headers.get("content-type"))
        if problem is not None:
            await _refuse(send, 415, problem, "content_type")
            return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _refuse(send, 413, f"body: {int(declared):,} bytes, more than the limit of {limit:,}", "body_size")
            return
        body = await _read_body(receive, limit)
        if body is None:
            await _refuse(send, 413, f"body: more than the limit of {limit:,} bytes", "body_size")
            return
        await self.app(scope, _replay(body, receive), send)


def _content_type_problem(value: str | None) -> str | None:
    media = (value or "").split(";", 1)[0].strip().lower()
    if media == "application/json":
        return None
    shown = repr(value[:60]) if value else "none"
    return f"Content-Type: expected application/json, got {shown}"


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it passes ``limit`` bytes (the rest is never read)."""
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: the disconnect, when it comes

    return replay


async def _refuse(send: Send, status: int, message: str, reason: str) -> None:
    telemetry.REJECTED.labels(reason=reason).inc()
    log.warning("refused POST %s: %d %s", PREDICT, status, message)
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": [*headers, (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def bound_http_metrics() -> None:
    """Give BentoML's HTTP metrics middleware no series for a path the service does not serve (idempotent).

    Its ``endpoint`` label is the raw request path, so every distinct unknown path added ~20 series (3,000 random
    404s took ``/metrics`` from 72 KB to 12.6 MB). It is the outermost middleware, in front of anything a service
    can add, so its class is wrapped here (bentoml is pinned in requirements.txt; a test checks the effect).
    """
    from bentoml._internal.server.http.instruments import RunnerTrafficMetricsMiddleware as Metrics

    if getattr(Metrics.__call__, "_tabrepro_bounded", False):
        return
    measured = Metrics.__call__

    async def bounded(self: Any, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in ROUTES:
            telemetry.UNKNOWN_PATHS.inc()
            await self.app(scope, receive, send)
            return
        await measured(self, scope, receive, send)

    bounded._tabrepro_bounded = True  # type: ignore[attr-defined]
    Metrics.__call__ = bounded


class ClientErrorLog(logging.Filter):
    """Rewrite BentoML's ERROR-with-traceback for a client error (a 4xx) as one WARNING line, value truncated, and
    for the 503 of an un-ready service as one ERROR line; any other fault keeps its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        status = client_status(error)
        unready = status is None and getattr(getattr(error, "error_code", None), "value", None) == 503
        if status is None and not unready:
            return True
        where = record.args if isinstance(record.args, tuple) and len(record.args) == 2 else ("?", "?")
        status = 503 if unready else status
        record.msg, record.args = "refused %s %s: %d %s", (where[1], where[0], status, describe_client_error(error))
        if not unready:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def client_status(error: BaseException | None) -> int | None:
    """The 4xx status BentoML answers ``error`` with; None for anything else (a server fault keeps its traceback)."""
    if isinstance(error, ValidationError):
        return 400
    code = getattr(getattr(error, "error_code", None), "value", None)
    return code if isinstance(code, int) and 400 <= code < 500 else None


def describe_client_error(error: BaseException | None) -> str:
    """One line, at most ~300 characters; a ValidationError without the values it refused."""
    if isinstance(error, ValidationError):
        text = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in error.errors())
    else:
        text = str(error)
    text = " ".join(text.split())
    return text if len(text) <= _LOGGED_CHARS else f"{text[:_LOGGED_CHARS]}... ({len(text):,} characters)"


def install_client_error_log() -> None:
    """Attach ``ClientErrorLog`` to the logger BentoML reports request exceptions on (idempotent)."""
    from bentoml._internal.server import http_app

    target = http_app.logger
    if not any(isinstance(f, ClientErrorLog) for f in target.filters):
        target.addFilter(ClientErrorLog())
