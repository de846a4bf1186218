"""The one token grammar of a data contract: how a raw token becomes a value, and what every refusal says.

Every adapter (``table``: prepare's whole table, ``rows``: scoring's and drift's Arrow chunks, ``records``: the
service's JSON records) applies the rules compiled here, and every message it shows comes from a ``Check`` here.
A token is text or null (a JSON value other than a string reaches the grammar as its JSON text, see
``json_token``). The rules, in the order they are applied:

1. Strip the ASCII whitespace ``WHITESPACE`` at both ends (not other Unicode spaces: "\\xa030" is not a number).
2. Missing: null, or a stripped token in the contract's ``missing_values``; refused unless ``nullable``.
3. Numbers: the stripped token must match ``NUMBER_SYNTAX`` (optional sign, ASCII digits, an optional decimal
   point, an optional exponent) and be finite as a float64. So "1e3", "+30", ".5", "5." are numbers;
   "inf", "nan", "1_000", "0x10", "1,5", "1e400" (overflows) are not. Then ``integer``, ``min``, ``max``.
4. Booleans and categoricals: the stripped token must be one of the declared tokens (exact case).
5. The id, when the contract declares one: stripped, never missing (empty is missing), unique. A JSON record's
   id is text or a whole number (written as its digits); a float, boolean, array or object is refused.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from tabrepro.errors import DataError

if TYPE_CHECKING:
    from tabrepro.contract.spec import DataContract, FeatureSpec, TargetSpec

WHITESPACE = " \t\n\r\f\v"
NUMBER_SYNTAX = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_NUMBER = re.compile(NUMBER_SYNTAX)
_SHOWN_CHARS = 40


@dataclass(frozen=True)
class Check:
    """One rule a token can break. ``reason`` labels it (the service's rejected-requests counter); ``summary``
    says what is wrong without the value (a table report groups rows by it); ``message`` is the one text every
    adapter shows for one token: "<summary>, got <token>" (and where the first of a duplicate was)."""

    reason: str
    summary: str

    def message(self, token: str | None, *, first: str | None = None) -> str:
        where = f" (first at {first})" if first is not None else ""
        return f"{self.summary}, got {show(token)}{where}"


MISSING = Check("invalid_value", "missing value in a column that may not be missing")
NOT_A_NUMBER = Check("invalid_value", "expected a number")
DUPLICATE = Check("duplicate_id", "duplicate values in a column that must be unique")
ID_TYPE = Check("invalid_value", "expected text or a whole number as the id")
# the shape of a table or a JSON record (no token involved)
COLUMN_MISSING = "column is missing from the data"
NO_ROWS = "the table has no data rows"
FIELD_REQUIRED = "Field required"
UNKNOWN_FIELD = "unknown field"
NOT_AN_OBJECT = "expected an object"


def show(token: str | None) -> str:
    """How a raw token appears in a message: quoted, cut after 40 characters; a null is ``null``."""
    if token is None:
        return "null"
    return repr(token if len(token) <= _SHOWN_CHARS else token[:_SHOWN_CHARS] + "...")


def json_token(value: Any) -> str | None:
    """The raw token of a JSON value, as it would stand in a CSV cell: a string as itself, null as null, any other
    value (number, true/false, array, object) as its JSON text, so it gets the verdict that text gets in a file."""
    if value is None or isinstance(value, str):
        return value
    if type(value) is int or (type(value) is float and math.isfinite(value)):
        return repr(value)  # what json.dumps writes for them, without its overhead (the service's hot path)
    try:
        return json.dumps(value)
    except (TypeError, ValueError):  # not a JSON value (an in-process caller's object): its text
        return str(value)


def require_columns(
    present: Iterable[str], contract: DataContract, *, source: str, required: Sequence[str] | None = None
) -> None:
    """Raise ``DataError`` naming every ``required`` column (default: the id and the features) ``present`` lacks,
    and the columns the contract does not know (often the misspelt ones)."""
    names = list(present)
    needed = [*contract.id_columns, *contract.features] if required is None else required
    missing = [c for c in needed if c not in names]
    if missing:
        unknown = [c for c in names if c not in contract.columns]
        raise DataError(
            f"{source}: missing column(s) {missing} of data contract {contract.name!r}"
            + (f"; columns it does not know: {unknown}" if unknown else "")
        )


def clean_token(token: str | None, missing: frozenset[str]) -> str | None:
    """The stripped token, or None when it means "missing"."""
    if token is None:
        return None
    text = token.strip(WHITESPACE)
    return None if text in missing else text


@dataclass(frozen=True)
class NumberRule:
    """A numeric feature: missing tokens, the number syntax, then integer / min / max."""

    name: str
    missing: frozenset[str]
    nullable: bool
    integer: bool
    min: float | None
    max: float | None
    out_of_rule: Check

    def parse(self, token: str | None) -> tuple[float | None, Check | None]:
        """The value (None when missing) and the check it breaks, if any."""
        text = clean_token(token, self.missing)
        if text is None:
            return None, None if self.nullable else MISSING
        value = float(text) if _NUMBER.fullmatch(text) else math.nan
        if not math.isfinite(value):
            return None, NOT_A_NUMBER
        if self.breaks_rule(value):
            return None, self.out_of_rule
        return value, None

    def breaks_rule(self, value: float) -> bool:
        return bool(
            (self.integer and value % 1 != 0)
            or (self.min is not None and value < self.min)
            or (self.max is not None and value > self.max)
        )


@dataclass(frozen=True)
class TokenRule:
    """A boolean, categorical or target column: each declared token and the value it parses to (1.0 / 0.0 for a
    boolean's true / false tokens, the level itself for a categorical)."""

    name: str
    kind: Literal["boolean", "categorical", "target"]
    missing: frozenset[str]
    nullable: bool
    tokens: tuple[str, ...]
    values: tuple[float | str, ...]
    unknown: Check
    codes: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "codes", {token: i for i, token in enumerate(self.tokens)})

    def parse(self, token: str | None) -> tuple[float | str | None, Check | None]:
        code, check = self.code(token)
        return (self.values[code] if code >= 0 else None), check

    def code(self, token: str | None) -> tuple[int, Check | None]:
        """The index of the token in ``tokens``; -1 when missing or refused, with the check it breaks."""
        text = clean_token(token, self.missing)
        if text is None:
            return -1, None if self.nullable else MISSING
        code = self.codes.get(text, -1)
        return code, None if code >= 0 else self.unknown


@dataclass(frozen=True)
class IdRule:
    """The id column: stripped, never missing (an empty id is missing), unique within a table or a request."""

    name: str
    missing: frozenset[str]

    def parse(self, token: str | None) -> tuple[str | None, Check | None]:
        text = clean_token(token, self.missing)
        return (None, MISSING) if text is None else (text, None)

    def parse_json(self, value: Any) -> tuple[str | None, Check | None]:
        """A record's id: text, or a whole number as its digits; null or a missing token is no id (a request
        need not carry ids). Anything else is refused: 1.0 and "1" must not silently become one id."""
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        elif value is not None and not isinstance(value, str):
            return None, ID_TYPE
        text = clean_token(value, self.missing)
        return text, None


@dataclass(frozen=True)
class Grammar:
    """The compiled rules of one contract: the id (None when the contract declares none), each feature (contract
    order) and the target."""

    id: IdRule | None
    features: dict[str, NumberRule | TokenRule]
    target: NumberRule | TokenRule


def compile_grammar(contract: DataContract) -> Grammar:
    """Compile ``contract``'s rules; use ``contract.grammar``, which compiles them once per contract."""
    missing = frozenset(contract.missing_values)
    return Grammar(
        id=None if contract.id_column is None else IdRule(contract.id_column, missing | {""}),
        features={name: _feature_rule(name, spec, missing) for name, spec in contract.features.items()},
        target=_target_rule(contract.target, missing),
    )


def _target_rule(target: TargetSpec, missing: frozenset[str]) -> NumberRule | TokenRule:
    """A regression target parses as a number in its declared range; a class label must be one of the labels (a
    binary target's in the order positive, negative, as messages have always listed them)."""
    if target.task == "regression":
        check = Check("out_of_range", f"expected {_numeric_rule(target.min, target.max)}")
        return NumberRule(target.column, missing, True, False, target.min, target.max, check)
    levels = tuple(reversed(target.labels)) if target.task == "binary" else target.labels
    return TokenRule(target.column, "target", missing, True, levels, levels, _one_of(levels, "unknown_category"))


def _feature_rule(name: str, spec: FeatureSpec, missing: frozenset[str]) -> NumberRule | TokenRule:
    if spec.type == "numeric":
        check = Check("out_of_range", f"expected {_numeric_rule(spec.min, spec.max, integer=spec.integer)}")
        return NumberRule(name, missing, spec.nullable, spec.integer, spec.min, spec.max, check)
    if spec.type == "boolean":
        tokens = (*spec.true_values, *spec.false_values)
        values = (1.0,) * len(spec.true_values) + (0.0,) * len(spec.false_values)
        return TokenRule(name, "boolean", missing, spec.nullable, tokens, values, _one_of(tokens, "invalid_value"))
    levels = tuple(spec.values or ())
    unknown = _one_of(levels, "unknown_category")
    return TokenRule(name, "categorical", missing, spec.nullable, levels, levels, unknown)


def _one_of(tokens: tuple[str, ...], reason: str) -> Check:
    return Check(reason, f"expected one of {list(tokens)}")


def _numeric_rule(low: float | None, high: float | None, *, integer: bool = False) -> str:
    kind = "an integer" if integer else "a number"
    if low is not None and high is not None:
        return f"{kind} between {low:g} and {high:g}"
    if low is not None:
        return f"{kind} >= {low:g}"
    return f"{kind} <= {high:g}" if high is not None else kind
