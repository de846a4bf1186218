"""What a refused request leaves in the server's log: one line, not a traceback.

``ClientErrorLog`` turns BentoML's "Exception on /predict" ERROR with a traceback, logged for every refused request,
into one WARNING line with the status and a truncated reason (and the 503 of an un-ready service into one ERROR
line: its reason was logged with the start-up fault).
"""

from __future__ import annotations

import logging

from pydantic import ValidationError

_LOGGED_CHARS = 300


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
