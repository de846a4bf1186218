"""``/docs.json`` (OpenAPI 3.0) and ``/schema.json`` that tell the truth about ``POST /predict``.

BentoML converts the request model's JSON Schema into its own schema objects and loses what it cannot hold: in
``/schema.json`` a nullable field lost its ``null`` option and the id its integer option (``anyOf`` cut to its first
member), so a client generated from it could never send a blank ``TotalCharges``; ``{"type": "null"}`` is not
OpenAPI 3.0 at all; the errors were documented in BentoML's shapes, and 413, 415 and 503 not at all. So
``DocumentFix`` (a middleware) rewrites both documents after BentoML generated them: the request body is the
contract's record model as the guard built it (``PredictRequest``: in OpenAPI 3.0 a nullable value is
``nullable: true``), the 200 answer is ``PREDICT_RESPONSE`` (binary; ``predict_response`` per task), and every
error answer is ``errors.ERROR_SCHEMA``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Awaitable, Callable
from typing import Any

from tabrepro.serving.errors import ERROR_SCHEMA, Message, Receive, Scope, Send
from tabrepro.serving.guard import PredictRequest

DOCUMENTS = frozenset({"/docs.json", "/schema.json"})
ERROR_REF = {"$ref": "#/components/schemas/Error"}
PREDICT_ERRORS = {
    "400": "Not JSON, not strict JSON, or a record the data contract refuses (the message names record and field)",
    "413": "A body over serve.limits.max_body_bytes, or more records than serve.limits.max_records",
    "415": "A Content-Type other than application/json, or more than one Content-Type header",
    "503": "The service is not ready (a start-up fault), or no model could score the request (the served model's "
    "graph failed on it and there is no fallback, or it failed too): the reason is given",
    "500": "An unexpected fault; the server's log has it",
}
_PREDICTION = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "nullable": True, "description": "the record's id as text; null without one"},
        "index": {"type": "integer", "minimum": 0, "description": "the record's position in the request"},
        "probability": {"type": "number", "minimum": 0, "maximum": 1},
        "label": {"type": "integer", "enum": [0, 1]},
        "model_version": {"type": "string"},
        "role": {
            "type": "string",
            "enum": ["primary", "candidate", "fallback"],
            "description": "the model that answered this record: fallback where the served model's graph failed",
        },
    },
    "required": ["id", "index", "probability", "label", "model_version", "role"],
    "additionalProperties": False,
}
PREDICT_RESPONSE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "model_version": {"type": "string"},
        "model_sha256": {"type": "string"},
        "threshold": {"type": "number"},
        "answered_by": {
            "type": "string",
            "enum": ["primary", "fallback"],
            "description": "fallback when the fallback model answered any record (the served model's graph failed "
            "on them); model_version, model_sha256 and threshold are then the fallback's",
        },
        "request_id": {"type": "string"},
        "predictions": {"type": "array", "items": _PREDICTION},
    },
    "required": ["model_version", "model_sha256", "threshold", "answered_by", "request_id", "predictions"],
    "additionalProperties": False,
}


_RESPONSE: dict[str, dict[str, Any]] = {"schema": PREDICT_RESPONSE}  # this worker's model's; binary by default


def predict_response(task: str, classes: tuple[str, ...] = (), unit: str | None = None) -> dict[str, Any]:
    """The 200 answer of ``/predict`` for a model of ``task`` (issue 21): binary ``PREDICT_RESPONSE``; multiclass
    ``label`` (a class name) and ``probabilities`` keyed by class name (in class order); regression ``prediction``.
    A non-binary answer names its ``task`` at the top level instead of a ``threshold``."""
    if task == "binary":
        return PREDICT_RESPONSE
    prediction: dict[str, Any] = copy.deepcopy(_PREDICTION)
    fields: dict[str, Any] = prediction["properties"]
    del fields["probability"], fields["label"]
    if task == "regression":
        what = f"the predicted value, in {unit}" if unit else "the predicted value"
        answer: dict[str, Any] = {"prediction": {"type": "number", "description": what}}
    else:
        probability = {"type": "number", "minimum": 0, "maximum": 1}
        answer = {
            "label": {"type": "string", "enum": list(classes), "description": "the class of the largest probability"},
            "probabilities": {
                "type": "object",
                "properties": dict.fromkeys(classes, probability),
                "required": list(classes),
                "additionalProperties": False,
                "description": "each class's probability, in the contract's class order",
            },
        }
    prediction["properties"] = {"id": fields["id"], "index": fields["index"], **answer, **fields}
    prediction["required"] = ["id", "index", *answer, "model_version", "role"]
    response = copy.deepcopy(PREDICT_RESPONSE)
    top = response["properties"]
    top.pop("threshold")
    response["properties"] = {**top, "task": {"type": "string", "enum": [task]}, "predictions": {"type": "array"}}
    response["properties"]["predictions"]["items"] = prediction
    response["required"] = [r if r != "threshold" else "task" for r in response["required"]]
    return response


def configure_response(task: str, classes: tuple[str, ...] = (), unit: str | None = None) -> None:
    """Document this worker's model's answers (``service`` calls it at start-up)."""
    _RESPONSE["schema"] = predict_response(task, classes, unit)


def as_openapi30(schema: Any) -> Any:
    """JSON Schema to the OpenAPI 3.0 dialect: an ``anyOf`` with ``{"type": "null"}`` becomes ``nullable: true``
    (on the one other member, merged, or on the ``anyOf`` of the others); an enum that may be null lists null."""
    if isinstance(schema, list):
        return [as_openapi30(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: as_openapi30(value) for key, value in schema.items()}
    options = converted.get("anyOf")
    if not isinstance(options, list) or {"type": "null"} not in options:
        return converted
    others = [option for option in options if option != {"type": "null"}]
    rest = {key: value for key, value in converted.items() if key != "anyOf"}
    merged = {**others[0], **rest} if len(others) == 1 else {"anyOf": others, **rest}
    if "enum" in merged:
        merged["enum"] = [*merged["enum"], None]
    return merged | {"nullable": True}


def fix_docs(doc: dict[str, Any], request_schema: dict[str, Any]) -> dict[str, Any]:
    """BentoML's OpenAPI document with the true request and answers of ``/predict`` and the one error shape."""
    doc = copy.deepcopy(doc)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    schemas["PredictRequest"] = as_openapi30(request_schema)
    schemas["PredictResponse"] = _RESPONSE["schema"]
    for operations in doc.get("paths", {}).values():
        for operation in operations.values():
            for status, answer in operation.get("responses", {}).items():
                if status[:1] in ("4", "5"):
                    answer["content"] = {"application/json": {"schema": ERROR_REF}}
    predict = doc.get("paths", {}).get("/predict", {}).get("post")
    if predict is not None:
        body = {"schema": {"$ref": "#/components/schemas/PredictRequest"}}
        predict["requestBody"] = {"required": True, "content": {"application/json": body}}
        ok = {"schema": {"$ref": "#/components/schemas/PredictResponse"}}
        answer = {"description": "One prediction per record, in request order", "content": {"application/json": ok}}
        responses: dict[str, Any] = {"200": answer}
        for status, text in PREDICT_ERRORS.items():
            responses[status] = {"description": text, "content": {"application/json": {"schema": ERROR_REF}}}
        predict["responses"] = responses
    ready = doc.get("paths", {}).get("/readyz", {}).get("get")
    if ready is not None:
        answers = ready.setdefault("responses", {})
        answers.setdefault("200", {})["description"] = (
            "Ready. While the fallback model answers for a failing graph (and serve.fallback.degraded_seconds "
            'after), still 200, with {"status": "degraded", "reason": ...}: the replica answers, keep it in rotation'
        )
        answers["503"] = {
            "description": "The service is not ready: the reason is given (a start-up fault)",
            "content": {"application/json": {"schema": ERROR_REF}},
        }
    return doc


def fix_service_schema(doc: dict[str, Any], request_schema: dict[str, Any]) -> dict[str, Any]:
    """BentoML's ``/schema.json`` with ``/predict``'s input and output as they are (plain JSON Schema)."""
    doc = copy.deepcopy(doc)
    for route in doc.get("routes", []):
        if route.get("route") == "/predict":
            route["input"] = copy.deepcopy(request_schema)
            route["output"] = as_json_schema(_RESPONSE["schema"])
    return doc


def as_json_schema(schema: Any) -> Any:
    """The OpenAPI 3.0 ``nullable: true`` back to JSON Schema (``anyOf`` with null)."""
    if isinstance(schema, list):
        return [as_json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: as_json_schema(value) for key, value in schema.items() if key != "nullable"}
    return {"anyOf": [converted, {"type": "null"}]} if schema.get("nullable") else converted


class DocumentFix:
    """ASGI middleware: ``GET /docs.json`` and ``GET /schema.json`` answered with the fixed document."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in DOCUMENTS or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        held: list[Message] = []
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                held.append(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        start, body = held[0], b"".join(chunks)
        if start["status"] == 200:
            body = json.dumps(_fixed(scope["path"], json.loads(body))).encode()
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": start["status"], "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})


def _fixed(path: str, doc: dict[str, Any]) -> dict[str, Any]:
    request_schema = PredictRequest.model_json_schema()
    return fix_docs(doc, request_schema) if path == "/docs.json" else fix_service_schema(doc, request_schema)
