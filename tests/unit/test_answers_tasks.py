"""The answer to one record per task (issue 21) in the prediction log, the response and the OpenAPI document:
binary lines keep their exact bytes; multiclass answers name the label and each class's probability in class
order; regression answers the prediction; a non-finite answer is refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import jsonschema
import numpy as np
import pytest

from tabrepro.serving.answers import answer_fields, one_per_row
from tabrepro.serving.openapi import PREDICT_RESPONSE, as_json_schema, predict_response
from tabrepro.serving.predlog import LoggedRequest, ModelAnswers, format_lines

CLASSES = ("Adelie", "Chinstrap", "Gentoo")
TS = datetime(2026, 1, 1, tzinfo=UTC)


def _lines(answers: ModelAnswers) -> list[dict]:
    request = LoggedRequest(TS, "r" * 32, "id", [{"id": "a", "x": 1.0}, {"id": "b", "x": None}], [answers])
    return [json.loads(line) for line in format_lines(request)]


def test_binary_lines_keep_their_bytes():
    answers = ModelAnswers("v", "aa" * 32, "primary", True, 0.5, [0, 1], np.array([0.7, 0.1]))
    request = LoggedRequest(TS, "r" * 32, "id", [{"id": "a", "x": 1.0}, {"id": "b", "x": None}], [answers])
    assert format_lines(request)[0].endswith(b'"inputs":{"id":"a","x":1.0},"probability":0.7,"label":1}\n')


def test_multiclass_and_regression_lines():
    p = np.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]])
    multi = _lines(ModelAnswers("v", "aa" * 32, "primary", True, None, [0, 1], p, "multiclass", CLASSES))
    assert [line["label"] for line in multi] == ["Chinstrap", "Adelie"]
    assert list(multi[0]["probabilities"]) == list(CLASSES) and multi[0]["probabilities"]["Gentoo"] == 0.3
    assert "probability" not in multi[0]
    reg = _lines(ModelAnswers("v", "aa" * 32, "primary", True, None, [0, 1], np.array([12.5, -3.0]), "regression"))
    assert [line["prediction"] for line in reg] == [12.5, -3.0] and "label" not in reg[0]
    with pytest.raises(ValueError, match="regression answer nan is not a finite number"):
        _lines(ModelAnswers("v", "aa" * 32, "primary", True, None, [0, 1], np.array([1.0, np.nan]), "regression"))
    with pytest.raises(ValueError, match="multiclass answer"):
        _lines(ModelAnswers("v", "aa" * 32, "primary", True, None, [0, 1], p * np.inf, "multiclass", CLASSES))


def test_one_per_row_and_a_binary_answer_needs_its_threshold():
    assert one_per_row(np.array([[0.2, 0.8], [0.9, 0.1]]), task="multiclass").tolist() == [0.8, 0.9]
    assert one_per_row(np.array([3.0]), task="regression").size == 0
    with pytest.raises(ValueError, match="threshold"):
        answer_fields(0.3, task="binary", classes=(), threshold=None)


def _answer(task: str, prediction: dict) -> dict:
    head = {"model_version": "v", "model_sha256": "s", "answered_by": "primary", "request_id": "r"}
    item = {"id": None, "index": 0, **prediction, "model_version": "v", "role": "primary"}
    return {**head, "task": task, "predictions": [item]}


def test_the_document_per_task_accepts_its_answers_only():
    assert predict_response("binary") is PREDICT_RESPONSE
    multi = as_json_schema(predict_response("multiclass", CLASSES))
    good = answer_fields([0.2, 0.5, 0.3], task="multiclass", classes=CLASSES, threshold=None)
    jsonschema.validate(_answer("multiclass", good), multi)
    for bad in ({**good, "label": "Emperor"}, {**good, "probabilities": {"Adelie": 1.0}}, {"probability": 0.5}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(_answer("multiclass", bad), multi)
    reg = predict_response("regression", (), "EUR")
    jsonschema.validate(_answer("regression", {"prediction": -4.5}), as_json_schema(reg))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(_answer("regression", {"prediction": -4.5, "label": 1}), as_json_schema(reg))
    assert reg["required"][2] == "task" and "threshold" not in reg["properties"]
    assert "EUR" in reg["properties"]["predictions"]["items"]["properties"]["prediction"]["description"]
