"""The project's errors and exit codes: what a user got wrong is named and exits 2, never a traceback.

Exit codes of every command (stages, ``tabrepro ...``): 0 done; 1 only the command's documented verdict
(``drift``: retrain, ``report``: a tolerance broke); 2 bad input (params, contract, data, arguments, model files),
with one message naming the key, path or field; 3 an unexpected failure (a bug or a fault of the machine), with
its traceback.

No message may carry a secret: every message, log line, exception text and report that may hold a URL or a params
section goes through ``mask_secrets`` (log lines through ``MaskingFormatter``, which entry points install with
``configure_logging``). What is masked (replaced by ``***``):
- a URL's password: everything between ``scheme://user:`` and the LAST ``@`` of the URL, so a password holding
  ``@ : / % #`` (written raw, which no URL parser reads as meant) is hidden whole;
- a secret query parameter (``?password=...``, ``sslpassword``, ``pwd``, ``pass``, ``secret``, ``token``...) up to
  the next ``&`` or the URL's end;
- the value of a secret-named key in a repr or YAML text (``'password': '...'``, ``password: ...``).
A URL ends at white space or a quote, as it does in a repr or a log line.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)

EXIT_OK = 0
EXIT_VERDICT = 1
EXIT_BAD_INPUT = 2
EXIT_UNEXPECTED = 3


def exit_code_of(body: Callable[[], int | None], *, what: str, log: logging.Logger, unchanged: bool = False) -> int:
    """The exit code of running ``body``: what it returns (None: 0), 2 for a ``TabreproError`` (its message
    logged, no traceback), 3 for anything else (logged with its traceback). The one mapping of every entry point
    (``tabrepro ...`` and every stage's ``main()``); ``what`` names it in the messages, ``unchanged`` adds that no
    output was changed (a stage's outputs are staged)."""
    try:
        code = body()
    except TabreproError as exc:
        if unchanged:
            log.error("%s failed; no outputs were changed.\n%s", what, exc)
        else:
            log.error("%s", exc)
        return EXIT_BAD_INPUT
    except Exception:
        note = "; no outputs were changed" if unchanged else ""
        log.exception("%s failed unexpectedly (a bug, or a fault of the machine)%s", what, note)
        return EXIT_UNEXPECTED
    return EXIT_OK if code is None else code


class TabreproError(Exception):
    """An expected failure caused by input (params, contract, data, arguments, files): exit 2, message only."""


class ConfigError(TabreproError, ValueError):
    """A params or contract value is wrong; the message names the key and the problem."""


class DataError(TabreproError, ValueError):
    """The input data cannot be used: unreadable, empty, or (subclass) breaking its contract."""


def parse_section(model: type[M], raw: Any, *, where: str) -> M:
    """Validate ``raw`` into ``model``; every problem is listed with its full key."""
    if raw is None:
        raise ConfigError(f"{where}: section is missing")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = [_describe(err, where) for err in exc.errors()]
        raise ConfigError("invalid parameters:\n  " + "\n  ".join(problems)) from None


def _describe(err: Any, where: str) -> str:
    loc = ".".join(str(p) for p in err["loc"] if p != "function-after")
    key = f"{where}.{loc}" if loc else where
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown key (typo?)"
    got = mask_secrets(repr(err.get("input")))  # masked before it is cut short: a cut URL may hide its "@"
    got = got if len(got) <= 60 else got[:57] + "..."
    return f"{key}: {msg} (got {got})" if err["type"] != "missing" else f"{key}: {msg}"


MASK = "***"
_SECRET_KEYS = r"(?:password|passwd|pwd|sslpassword|secret|api_key|apikey)"  # "token" is a word of the contract
_SECRET_NAMES = rf"(?:{_SECRET_KEYS[3:-1]}|pass|token|access_token)"
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]*")
_QUERY = re.compile(rf"(?i)([?&;]{_SECRET_NAMES}=)[^&\s'\"]*")
_KEY_VALUE = re.compile(rf"(?i)(['\"]?\b{_SECRET_KEYS}['\"]?\s*[:=]\s*)('[^']*'|\"[^\"]*\"|[^\s,}}&'\"]+)")


def mask_url(url: str) -> str:
    """``url`` with its password and secret query parameters masked; any text without ``://`` is returned as is."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    rest = _QUERY.sub(rf"\g<1>{MASK}", rest)  # first: a query password may hold an "@"
    at = rest.rfind("@")
    if at >= 0:
        user, colon, _ = rest[:at].partition(":")
        if colon:
            rest = f"{user}:{MASK}{rest[at:]}"
    return scheme + sep + rest


def mask_secrets(text: str) -> str:
    """``text`` with every URL's secrets and every secret-named key's value masked."""
    text = _URL.sub(lambda m: mask_url(m.group(0)), text)
    return _KEY_VALUE.sub(lambda m: m.group(1) + _masked_value(m.group(2)), text)


def _masked_value(value: str) -> str:
    if value[:1] in "'\"" and len(value) >= 2:
        return value[0] + MASK + value[-1]
    return MASK


class MaskingFormatter(logging.Formatter):
    """A formatter whose every line (message, arguments, traceback) is passed through ``mask_secrets``."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(super().format(record))


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(*, force: bool) -> None:
    """The project's logging for an entry point (``main()`` only): INFO to stderr, every line masked. Without
    ``force``, handlers already on the root logger are left as they are (as ``logging.basicConfig`` does)."""
    root = logging.getLogger()
    before = set(root.handlers)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, force=force)
    for handler in root.handlers:
        if handler not in before or force:
            handler.setFormatter(MaskingFormatter(LOG_FORMAT))
