"""The service's HTTP edge: what a request may be before BentoML reads it (what a refused one logs: ``refusal_log``).

- ``RequestGuard`` (an ASGI middleware) refuses a ``POST /predict`` whose Content-Type is not JSON or is given more
  than once (415), a body over ``serve.limits.max_body_bytes`` (413), by its Content-Length or, for a streamed
  (chunked) body, as soon as the bytes read pass the limit: nothing over the limit is ever parsed or held in memory
  (it is read and dropped, up to a bound, so that a client sending its whole body first still gets the 413), and a
  body that is not strict JSON (``body.parse_strict_json``: a repeated key, an over-long number) with a 400.
- ``PredictRequest`` is the request model: ``{"records": [...]}`` and nothing else (an unknown top-level key is a
  400); its JSON Schema carries the contract's record (``records.items``), so the OpenAPI document describes one.
- ``bound_http_metrics`` keeps BentoML's per-path HTTP metrics to the service's own routes: any other path is
  answered (404) without a series of its own, and counted in ``tabrepro_unknown_path_requests_total``.

The limits and the record schema are set once per worker by the service (``configure``); until then the
defaults of ``LimitsParams`` apply.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import bentoml
from pydantic import ConfigDict, Field

from tabrepro.artefacts import LimitsParams
from tabrepro.serving import telemetry
from tabrepro.serving.body import BodyError, parse_strict_json

log = logging.getLogger("tabrepro.serving")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PREDICT = "/predict"
# every path the service answers; only these get BentoML's per-path HTTP metrics
ROUTES = frozenset({PREDICT, "/", "/docs.json", "/schema.json", "/metrics", "/healthz", "/livez", "/readyz"})
_DRAIN_FACTOR = 4  # a refused body is read (and dropped) up to 4 x max_body_bytes; past that the socket is closed


@dataclass
class GuardSettings:
    """The limits of this worker and the JSON Schema of one record (None until the model is loaded)."""

    limits: LimitsParams = field(default_factory=LimitsParams)
    record_schema: dict[str, Any] | None = None


SETTINGS = GuardSettings()


def configure(limits: LimitsParams, record_schema: dict[str, Any] | None) -> None:
    """Set this worker's limits and record schema (the service calls it once it has read its manifest)."""
    SETTINGS.limits, SETTINGS.record_schema = limits, record_schema


class PredictRequest(bentoml.IODescriptor):  # type: ignore[misc]  # a lazy export of bentoml's: Any to mypy
    """The body of ``POST /predict``."""

    model_config = ConfigDict(extra="forbid")

    records: list[Any] = Field(description="the records to score, each validated by the data contract")

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        schema: dict[str, Any] = super().model_json_schema(*args, **kwargs)
        records = schema.get("properties", {}).get("records")
        if records is not None and SETTINGS.record_schema is not None:
            # a copy: BentoML's OpenAPI conversion edits the schema it is given in place (it cut every anyOf to its
            # first member, so from the second document on the null and integer options were gone)
            item = copy.deepcopy(SETTINGS.record_schema)
            records |= {"items": item, "minItems": 1, "maxItems": SETTINGS.limits.max_records}
        return schema


class RequestGuard:
    """ASGI middleware in front of ``POST /predict``: JSON only, and a bounded body read before BentoML parses it."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PREDICT or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        types = [v.decode("latin-1") for k, v in scope["headers"] if k.lower() == b"content-type"]
        problem = _content_type_problem(types)
        if problem is not None:
            await _refuse(send, 415, problem, "content_type")
            return
        limits = SETTINGS.limits
        lengths = [v.decode("latin-1") for k, v in scope["headers"] if k.lower() == b"content-length"]
        declared = int(lengths[0]) if len(lengths) == 1 and lengths[0].isascii() and lengths[0].isdigit() else 0
        if declared > limits.max_body_bytes:
            message = f"body: {declared:,} bytes, more than the limit of {limits.max_body_bytes:,}"
            await _refuse(send, 413, message, "body_size", drain=receive if declared <= _drain_bound() else None)
            return
        body = await _read_body(receive, limits.max_body_bytes)
        if body is None:
            message = f"body: more than the limit of {limits.max_body_bytes:,} bytes"
            await _refuse(send, 413, message, "body_size", drain=receive)
            return
        try:
            parse_strict_json(body, max_number_chars=limits.max_text_chars)
        except BodyError as exc:
            await _refuse(send, 400, str(exc), "strict_json")
            return
        await self.app(scope, _replay(body, receive), send)


def _content_type_problem(values: list[str]) -> str | None:
    """None for exactly one JSON Content-Type. Given twice, BentoML's parser read the first and this guard the
    last (a multipart body behind a JSON one was a 500), so a repeated header is refused whatever it says."""
    if len(values) > 1:
        return f"Content-Type: expected application/json once, got {len(values)} Content-Type headers"
    value = values[0] if values else None
    media = (value or "").split(";", 1)[0].strip().lower()
    if media == "application/json":
        return None
    shown = repr(value[:60]) if value else "none"
    return f"Content-Type: expected application/json, got {shown}"


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it passes ``limit`` bytes (the rest is read by ``_refuse`` and dropped)."""
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


def _drain_bound() -> int:
    """How many bytes of a refused body are read and dropped so that its sender receives the 413."""
    return _DRAIN_FACTOR * SETTINGS.limits.max_body_bytes


async def _drain(receive: Receive) -> None:
    """Read and drop the rest of a refused body, up to ``_drain_bound()`` bytes in all (nothing is kept).

    A client that sends its whole body before reading (Python's http.client) got a connection reset instead of
    the 413: closing a socket with unread data makes the kernel send RST, which discards the answer in flight.
    """
    left = _drain_bound()
    while left > 0:
        message = await receive()
        left -= len(message.get("body", b""))
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            return


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: the disconnect, when it comes

    return replay


async def _refuse(send: Send, status: int, message: str, reason: str, *, drain: Receive | None = None) -> None:
    """Answer ``status`` with the one error shape and close; ``drain``: first read the rest of the body."""
    telemetry.REJECTED.labels(reason=reason).inc()
    log.warning("refused POST %s: %d %s", PREDICT, status, message)
    if drain is not None:
        await _drain(drain)
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
    Metrics.__call__ = bounded  # type: ignore[method-assign]  # patched on purpose: BentoML has no hook for it
