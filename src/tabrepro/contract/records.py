"""The record adapter: the request model of the service, one JSON record -> parsed values or per-field errors.

A JSON value reaches the grammar as the raw token it would be in a CSV file (``grammar.json_token``): a string as
itself, null as missing, a number, true/false, an array or an object as its JSON text. So a value in a request and
the same value in a file get the same verdict and the same message, and no JSON type can crash a parser. Every
feature is required (a nullable one may be null); the id is optional (a request need not carry ids) but, when
given, is text or a whole number, and unique within the request; unknown fields are refused (the id field too,
when the contract declares no id column: such records are known by their index in the request). A text value
longer than ``max_text_chars`` is refused before the grammar sees it (a 100 MB id is never parsed, stored or echoed).
``record_json_schema`` describes the same record as JSON Schema (the service's OpenAPI document), so schema-driven
clients and fuzzers generate records this model accepts. Plain Python, no pandas, no Arrow: it runs on every request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tabrepro.contract.grammar import (
    DUPLICATE,
    FIELD_REQUIRED,
    NOT_AN_OBJECT,
    UNKNOWN_FIELD,
    Check,
    json_token,
    show,
)
from tabrepro.contract.spec import DataContract, FeatureSpec

MAX_TEXT_CHARS = 256  # the default longest text value (id or level) of a record; serve.limits.max_text_chars
TOO_LONG = "text longer than {limit} characters"


@dataclass(frozen=True)
class RecordError:
    """Why one record of a request was refused."""

    index: int
    field: str
    problem: str
    reason: str  # a short label for the rejected-requests counter

    def __str__(self) -> str:
        return f"records[{self.index}].{self.field}: {self.problem}"


class RecordModel:
    """The request model of one record, derived from the contract's grammar."""

    def __init__(self, contract: DataContract, *, max_text_chars: int = MAX_TEXT_CHARS) -> None:
        grammar = contract.grammar
        self.contract = contract
        self.max_text_chars = max_text_chars
        self._id = grammar.id  # None: the contract declares no id column
        self._features = list(grammar.features.items())
        self._known = frozenset([*contract.id_columns, *grammar.features])

    def parse(self, record: Any, *, index: int = 0) -> tuple[dict[str, Any] | None, list[RecordError]]:
        """The parsed record (numbers and booleans as float, levels as text, None when missing) or its errors."""
        if not isinstance(record, Mapping):
            return None, [RecordError(index, "*", f"{NOT_AN_OBJECT}, got {type(record).__name__}", "not_an_object")]
        parsed, errors = self._fields(record, index)
        return (None if errors else parsed), errors

    def parse_records(self, records: Sequence[Any]) -> tuple[list[dict[str, Any]], list[RecordError]]:
        """Parse every record; the parsed ones and every problem. An id repeated within ``records`` is refused
        with the index of the record that had it first."""
        parsed: list[dict[str, Any]] = []
        errors: list[RecordError] = []
        first: dict[Any, int] = {}  # id -> the index of the record that had it first
        id_rule = self._id
        for index, record in enumerate(records):
            if not isinstance(record, Mapping):
                errors += self.parse(record, index=index)[1]
                continue
            values, problems = self._fields(record, index)
            ident = values[id_rule.name] if id_rule is not None else None
            if id_rule is not None and ident is not None and ident in first:
                token = json_token(record[id_rule.name])
                problems.append(_error(index, id_rule.name, DUPLICATE, token, first=f"records[{first[ident]}]"))
            elif ident is not None:
                first[ident] = index
            errors += problems
            if not problems:
                parsed.append(values)
        return parsed, errors

    def _fields(self, record: Mapping[str, Any], index: int) -> tuple[dict[str, Any], list[RecordError]]:
        errors: list[RecordError] = []
        parsed: dict[str, Any] = {}
        limit = self.max_text_chars
        if self._id is not None:
            ident = record.get(self._id.name)
            if type(ident) is str and len(ident) > limit:
                errors.append(_too_long(index, self._id.name, ident, limit))
                parsed[self._id.name] = None
            else:
                parsed[self._id.name], check = self._id.parse_json(ident)
                if check is not None:
                    errors.append(_error(index, self._id.name, check, json_token(record[self._id.name])))
        for name, rule in self._features:
            if name not in record:
                errors.append(RecordError(index, name, FIELD_REQUIRED, "missing_field"))
                continue
            value = record[name]
            if type(value) is str and len(value) > limit:
                errors.append(_too_long(index, name, value, limit))
                continue
            token = json_token(value)
            parsed[name], check = rule.parse(token)
            if check is not None:
                errors.append(_error(index, name, check, token))
        if not self._known.issuperset(record):
            unknown = [k for k in record if k not in self._known]
            errors += [RecordError(index, _cut(str(k)), UNKNOWN_FIELD, "unknown_field") for k in unknown]
        return parsed, errors


def build_record_model(contract: DataContract, *, max_text_chars: int = MAX_TEXT_CHARS) -> RecordModel:
    """The request model of ``contract`` (built once per served model)."""
    return RecordModel(contract, max_text_chars=max_text_chars)


def record_json_schema(contract: DataContract, *, max_text_chars: int = MAX_TEXT_CHARS) -> dict[str, Any]:
    """One record as JSON Schema: each feature required, with its type, levels or range (null allowed where the
    contract allows missing); the id optional, text or a whole number; nothing else."""
    properties: dict[str, Any] = {}
    if contract.id_column is not None:
        properties[contract.id_column] = {
            "anyOf": [{"type": "string", "minLength": 1, "maxLength": max_text_chars}, {"type": "integer"}],
            "description": "the record's id (optional; unique within a request)",
        }
    for name, spec in contract.features.items():
        properties[name] = _feature_schema(spec) | ({"description": spec.description} if spec.description else {})
    return {
        "type": "object",
        "properties": properties,
        "required": list(contract.features),
        "additionalProperties": False,
    }


def _feature_schema(spec: FeatureSpec) -> dict[str, Any]:
    if spec.type == "numeric":
        schema: dict[str, Any] = {"type": "integer" if spec.integer else "number"}
        schema |= {"minimum": spec.min} if spec.min is not None else {}
        schema |= {"maximum": spec.max} if spec.max is not None else {}
    else:
        levels = list(spec.values or ()) if spec.type == "categorical" else [*spec.true_values, *spec.false_values]
        schema = {"type": "string", "enum": levels}
    if spec.nullable:
        return {"anyOf": [schema, {"type": "null"}]}
    return schema


def _cut(name: str) -> str:
    """A field name as it may appear in a message: a client's 10 MB key is not echoed back."""
    return name if len(name) <= 64 else f"{name[:64]}... ({len(name):,} characters)"


def _too_long(index: int, name: str, value: str, limit: int) -> RecordError:
    return RecordError(
        index, name, f"{TOO_LONG.format(limit=limit)}, got {show(value)} ({len(value):,} characters)", "too_long"
    )


def _error(index: int, name: str, check: Check, token: str | None, *, first: str | None = None) -> RecordError:
    return RecordError(index, name, check.message(token, first=first), check.reason)
