"""The request body read strictly, before BentoML's parser sees it: JSON as RFC 8259 defines it, and bounded.

BentoML's parser (pydantic) accepts a key given twice in one object, keeping the last (``"tenure": "abc",
"tenure": 1`` scored as 1), and no length limit applies to numbers (an id of 4,000 digits was echoed back). So the
guard parses each body once with ``parse_strict_json`` and refuses, with a 400 whose message names the key:
a key repeated in an object, a number longer than the text limit (digits count like characters), ``NaN`` and
``Infinity`` (not JSON), and nesting deeper than the parser's recursion allows (about 1,000 levels: a clean 400, not
a crash; a start-up file is held to ``MAX_DEPTH``, which costs a walk of the parsed values, ~60 ms for 10,000
records, so the request path leaves it to the parsers). Nothing here echoes a value.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

MAX_DEPTH = 64  # a record is two levels down; nothing the service reads is deeper
_PARSER_DEPTH = "about 1,000"  # Python's recursion limit, which json's parser checks


class BodyError(ValueError):
    """The body is not the strict JSON the service reads; the message says what and where."""


def parse_strict_json(data: bytes, *, max_number_chars: int, max_depth: int | None = None) -> Any:
    """The parsed body, or a BodyError (duplicate key, over-long number, NaN, too deep, not JSON); ``max_depth``
    (at most ``MAX_DEPTH``) bounds the nesting below the parser's own bound."""
    long_numbers: list[int] = []

    def number(text: str, kind: type) -> Any:
        if len(text) > max_number_chars:
            long_numbers.append(len(text))
            return _LongNumber(len(text))
        return kind(text)

    def members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        found = dict(pairs)
        if len(found) != len(pairs):
            raise BodyError(f"key {_shown(_first_repeated(pairs))}: given more than once in one object")
        for key, value in pairs if long_numbers else ():
            if isinstance(value, _LongNumber):
                raise BodyError(f"{_shown(key)}: {value}, more than the limit of {max_number_chars}")
        return found

    # numbers are looked at one by one only where a run of number characters is long enough to be one too long
    counted = _long_run(max_number_chars).search(data) is not None
    try:
        parsed = json.loads(
            data.decode("utf-8"),  # JSON between systems is UTF-8 (RFC 8259); json.loads of bytes also took UTF-16
            object_pairs_hook=members,
            parse_constant=_refuse_constant,
            parse_int=(lambda t: number(t, int)) if counted else None,  # None: json's own int and float
            parse_float=(lambda t: number(t, float)) if counted else None,
        )
    except RecursionError:
        raise BodyError(f"body: JSON nested too deeply (at most {max_depth or _PARSER_DEPTH} levels)") from None
    except json.JSONDecodeError as exc:
        raise BodyError(f"body: not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except UnicodeDecodeError as exc:
        raise BodyError(f"body: not UTF-8 text (byte {exc.start})") from None
    if long_numbers:  # one outside any object (an array's item)
        raise BodyError(f"body: a number of {long_numbers[0]:,} characters, more than the limit of {max_number_chars}")
    if max_depth is not None and _depth(parsed, max_depth) > max_depth:
        raise BodyError(f"body: JSON nested too deeply (at most {max_depth} levels)")
    return parsed


@functools.cache
def _long_run(limit: int) -> re.Pattern[bytes]:
    return re.compile(rb"[-+.eE0-9]{%d,}" % (limit + 1))


class _LongNumber:
    def __init__(self, chars: int) -> None:
        self.chars = chars

    def __str__(self) -> str:
        return f"a number of {self.chars:,} characters"


def _refuse_constant(name: str) -> Any:
    raise BodyError(f"body: {name} is not JSON (numbers must be finite)")


def _first_repeated(pairs: list[tuple[str, Any]]) -> str:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return key
        seen.add(key)
    return ""


def _shown(key: str) -> str:
    """A key as a message may show it: quoted, and cut (a client's 10 MB key is not echoed back)."""
    return json.dumps(key if len(key) <= 64 else f"{key[:64]}... ({len(key):,} characters)")


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of parsed JSON (a scalar is 0), without recursion; counting stops past ``limit``."""
    deepest, stack = 0, [(value, 1)] if isinstance(value, dict | list) else []
    while stack and deepest <= limit:
        item, level = stack.pop()
        deepest = max(deepest, level)
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest
