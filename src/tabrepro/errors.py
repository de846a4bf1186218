"""The project's errors and exit codes: what a user got wrong is named and exits 2, never a traceback.

Exit codes of every command (stages, ``tabrepro ...``): 0 done; 1 only the command's documented verdict
(``drift``: retrain, ``report``: a tolerance broke); 2 bad input (params, contract, data, arguments, model files),
with one message naming the key, path or field; 3 an unexpected failure (a bug or a fault of the machine), with
its traceback.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)

EXIT_OK = 0
EXIT_VERDICT = 1
EXIT_BAD_INPUT = 2
EXIT_UNEXPECTED = 3


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
    got = repr(err.get("input"))
    got = got if len(got) <= 60 else got[:57] + "..."
    return f"{key}: {msg} (got {got})" if err["type"] != "missing" else f"{key}: {msg}"
