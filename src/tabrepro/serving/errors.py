"""One error shape for every answer that is not a 2xx: ``{"error": "<what was wrong, and where>"}``.

BentoML answers in three shapes of its own (``[{"error": …}]`` for its exceptions, ``{"error": …, "detail": […]}``
for its parser's validation errors, ``{"error": …}`` elsewhere), starlette in plain text (``/readyz``'s 503, a
404); ``OneErrorShape``, the outermost middleware of the service, rewrites each of them (and passes the guard's
own, already in shape, unchanged), so a client reads one field, whatever refused it. The OpenAPI document
(``openapi``) documents this shape (``ERROR_SCHEMA``) for 400, 413, 415 and 503 (and 404, 500).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from http import HTTPStatus
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every answer that is not a 2xx: what was wrong, naming the record and field where there is one",
    "properties": {"error": {"type": "string"}},
    "required": ["error"],
    "additionalProperties": False,
}
_MAX_CHARS = 2000
_DROPPED = frozenset({b"content-length", b"content-type"})


def error_message(status: int, body: bytes) -> str:
    """The one message of an error answer, whatever its shape (JSON of BentoML's shapes, or plain text)."""
    try:
        payload = json.loads(body)
    except ValueError:  # plain text (also a body that is not UTF-8)
        payload = None
    if isinstance(payload, list) and len(payload) == 1:  # BentoML's [{"error": ...}]
        payload = payload[0]
    text = None
    if isinstance(payload, dict):
        error, detail = payload.get("error"), payload.get("detail")
        if isinstance(detail, list):  # BentoML's validation error: pydantic's errors, without the input
            text = f"{error}: " + "; ".join(_validation_item(item) for item in detail)
        elif isinstance(error, str):
            text = error
        elif isinstance(detail, str):
            text = detail
    if text is None:
        text = body.decode("utf-8", "replace").strip() if payload is None else ""
    text = text or HTTPStatus(status).phrase
    return text if len(text) <= _MAX_CHARS else f"{text[:_MAX_CHARS]}... ({len(text):,} characters)"


def _validation_item(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    where = ".".join(str(part) for part in item.get("loc", ())) or "body"
    return f"{where}: {item.get('msg', '?')} ({item.get('type', '?')})"


class OneErrorShape:
    """ASGI middleware: an answer of status >= 400 is held until complete and sent again in the one shape."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: list[Message] = []
        chunks: list[bytes] = []

        async def shaped(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] >= 400:
                held.append(message)
                return
            if not held or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                await _send_shaped(send, held[0], b"".join(chunks))

        await self.app(scope, receive, shaped)


async def _send_shaped(send: Send, start: Message, body: bytes) -> None:
    status = start["status"]
    shaped = json.dumps({"error": error_message(status, body)}).encode()
    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() not in _DROPPED]
    headers += [(b"content-type", b"application/json"), (b"content-length", str(len(shaped)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": shaped, "more_body": False})
