"""package and the service per task (issue 21), in-process on tiny synthetic regression and multiclass inputs:
evaluate then package write a manifest and a report that carry the task (and classes / unit), each graph gated on
the task's parity; a real `bentoml serve` of the serving folder answers ``prediction`` (regression) or ``label``
and ``probabilities`` by class name (multiclass), equal to the fitted pipeline, refuses hostile input as for
binary, and documents the task's answer in its OpenAPI document."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import jsonschema
import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from tabrepro.artefacts import (
    MulticlassParity,
    PackageReport,
    RegressionParity,
    ServeParams,
    ServingManifest,
    read_artefact,
)
from tabrepro.config.params import BootstrapParams, EvaluateParams, PackageParams, PathsParams
from tabrepro.contract.spec import DataContract
from tabrepro.io.persistence import dump_skops
from tabrepro.onnxrt.placement import MODEL_FILE, TENSOR_FILE
from tabrepro.serving.fallback import answer_instead
from tabrepro.serving.openapi import as_json_schema
from tabrepro.serving.runtime import ServingError, ServingModel
from tabrepro.stages import evaluate, package
from tabrepro.training.features import build_preprocessor, transform_frame
from tabrepro.training.modeling import build_model, predict_output, save_model
from tabrepro.training.onnx_export import frame_to_records
from tests.conftest import paths_under, write_splits
from tests.support.local_serve import start_server, stop_server

CLASSES = ["lo", "mid", "hi"]
OVERRIDE = "tiny synthetic data of a test: the gate is not what is tested here"


def _build(root: Path, task: str, family: str) -> tuple[PathsParams, DataContract, Pipeline, pd.DataFrame]:
    """Raw CSV, prepared and featurized splits, the fitted preprocessor and model of ``task`` under ``root``."""
    rng = np.random.default_rng(0)
    n = 400
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    x2[::9] = np.nan
    group = rng.choice(["a", "b"], n)
    if task == "regression":
        y = 30 + 5 * x1 + 2 * np.nan_to_num(x2) + (group == "b") + rng.normal(size=n)
        target = {"column": "y", "task": "regression", "unit": "USD"}
    else:
        y = np.digitize(x1 + 0.5 * rng.normal(size=n), [-0.5, 0.5]).astype(np.int16)
        target = {"column": "y", "task": "multiclass", "classes": CLASSES}
    raw = root / "raw.csv"
    pd.DataFrame({"x1": x1, "x2": x2, "group": group, "y": y}).to_csv(raw, index=False)
    features = {"x1": {"type": "numeric"}, "x2": {"type": "numeric", "nullable": True}}
    features |= {"group": {"type": "categorical", "values": ["a", "b"]}}
    contract = DataContract(name="toy", source=str(raw), target=target, features=features, segments=("group",))
    key = contract.key_column
    prepared = pd.DataFrame({key: np.arange(2, n + 2), "x1": x1, "x2": x2, "group": group, "y": y})
    pre = build_preprocessor(contract).fit(prepared.iloc[:240])
    feats = pd.concat([prepared[[key]], transform_frame(pre, prepared), prepared[["y"]]], axis=1)
    paths = paths_under(root)
    cuts = {"train": slice(0, 240), "val": slice(240, 300), "test": slice(300, n)}
    write_splits(paths, prepared, feats, cuts)
    model = build_model(family, {"n_estimators": 20} if family != "logreg" else {}, task=task, seed=0, n_classes=3)
    x = feats.drop(columns=[key, "y"]).to_numpy(np.float32)[cuts["train"]]
    model.fit(x, y[cuts["train"]])
    save_model(model, family, paths.model, task=task, classes=() if task == "regression" else tuple(CLASSES))
    Path(paths.preprocessor).parent.mkdir(parents=True, exist_ok=True)
    dump_skops(pre, paths.preprocessor)
    return paths, contract, Pipeline([("pre", pre), ("model", model)]), prepared.iloc[cuts["test"]]


def _package(tmp_path: Path, task: str, family: str):
    paths, contract, pipeline, test = _build(tmp_path, task, family)
    evaluate.run(paths, contract, EvaluateParams(bootstrap=BootstrapParams(n=50, seed=1)), decimals=6)
    params = PackageParams(build_bento=False, latency_rows=10, override_gate=OVERRIDE)
    package.run(paths, contract, params, ServeParams())  # paths_under: the run record too is under tmp_path
    manifest = ServingManifest.model_validate_json((Path(paths.serving) / "manifest.json").read_text())
    report = read_artefact(paths.package_report, PackageReport)
    return paths, contract, pipeline, test, manifest, report


@pytest.mark.parametrize("family", ["random_forest", "xgboost"])
def test_regression_is_packaged_with_relative_parity(tmp_path: Path, family: str):
    _, _, pipeline, test, manifest, report = _package(tmp_path, "regression", family)
    assert (manifest.task, manifest.classes, manifest.unit) == ("regression", None, "USD")
    assert manifest.threshold is None and manifest.test_roc_auc is None
    assert report.task == "regression" and report.predictions_match_evaluate
    assert isinstance(report.parity, RegressionParity) and report.parity.max_rel_diff <= report.parity.tolerance
    assert report.parity.scale == pytest.approx(np.max(np.abs(pipeline.predict(test))), rel=1e-5)
    assert TENSOR_FILE in report.graphs and manifest.graphs["CUDAExecutionProvider"].file == TENSOR_FILE
    assert report.bento.labels["test_rmse"]


def test_a_multiclass_xgboost_is_packaged_with_both_graphs(tmp_path: Path):
    paths, contract, pipeline, test, manifest, report = _package(tmp_path, "multiclass", "xgboost")
    # the fallback (here the same folder) answers a failed model's records with the task's answers
    records = frame_to_records(test.iloc[:3], contract)
    served = ServingModel(paths.serving)
    answers = answer_instead(served, failed=("primary", "v1"), indices=[0, 1, 2], records=records)
    with pytest.raises(ServingError, match="a multiclass model has no positive-class probability"):
        served.predict_proba(records)  # a binary-only consumer is refused, never handed class 1's column
    assert answers.role == "fallback" and (answers.task, answers.classes) == ("multiclass", tuple(CLASSES))
    expected = predict_output(pipeline, test.iloc[:3], task="multiclass")
    assert np.max(np.abs(answers.probabilities - expected)) <= 1e-5
    assert answers.fields(answers.probabilities[0].tolist())["label"] == CLASSES[int(expected[0].argmax())]
    assert (manifest.task, manifest.classes, manifest.unit) == ("multiclass", tuple(CLASSES), None)
    assert report.task == "multiclass" and report.classes == tuple(CLASSES)
    assert isinstance(report.parity, MulticlassParity) and report.parity.label_flips == 0
    assert set(report.graphs) == {MODEL_FILE, TENSOR_FILE}  # softprob as tensor ops too, each checked for parity
    assert all(g.parity.label_flips == 0 and g.parity.max_abs_diff <= 1e-5 for g in report.graphs.values())
    assert manifest.graphs["CUDAExecutionProvider"].file == TENSOR_FILE
    assert manifest.threshold is None and 0.5 < (manifest.test_roc_auc or 0) <= 1


def _post(url: str, records: list) -> httpx.Response:
    return httpx.post(f"{url}/predict", json={"records": records}, timeout=30)


@pytest.mark.parametrize("task", ["regression", "multiclass"])
def test_the_service_answers_per_task_over_http(tmp_path: Path, task: str):
    paths, _, pipeline, test, _, _ = _package(tmp_path, task, "xgboost" if task == "regression" else "logreg")
    rows = test.iloc[:5]
    records = [{"x1": r.x1, "x2": None if np.isnan(r.x2) else r.x2, "group": r.group} for r in rows.itertuples()]
    expected = predict_output(pipeline, rows, task=task)
    predlog = tmp_path / "predictions.jsonl"
    env = {  # a shadow candidate, a fallback and the prediction log: each carries the task's answers
        "TABREPRO_ROLLOUT_MODE": "shadow",
        "TABREPRO_CANDIDATE_DIR": str(paths.serving),
        "TABREPRO_FALLBACK_DIR": str(paths.serving),
        "TABREPRO_PREDICTION_LOG": str(predlog),
    }
    proc, url = start_server(paths.serving, bentoml_home=tmp_path / "bentoml", env=env)
    try:
        assert httpx.get(f"{url}/readyz", timeout=10).status_code == 200
        answer = _post(url, records).json()
        hostile = [_post(url, [{**records[0], "x1": "1e999"}]), _post(url, [{**records[0], "group": "zzz"}])]
        docs = httpx.get(f"{url}/docs.json", timeout=10).json()
    finally:
        log = stop_server(proc)
    assert answer["task"] == task and "threshold" not in answer, log
    got = answer["predictions"]
    assert [p["index"] for p in got] == list(range(5))
    documented = docs["components"]["schemas"]["PredictResponse"]
    jsonschema.validate(answer, as_json_schema(documented))  # the answer is what the document says
    with pytest.raises(jsonschema.ValidationError):  # and the check can fail: a binary answer is not
        jsonschema.validate({**answer, "predictions": [{**got[0], "probability": 0.5}]}, as_json_schema(documented))
    item = documented["properties"]["predictions"]["items"]
    if task == "regression":
        assert np.allclose([p["prediction"] for p in got], expected, rtol=1e-5)
        assert item["required"] == ["id", "index", "prediction", "model_version", "role"]
        assert "USD" in item["properties"]["prediction"]["description"]
    else:
        probabilities = [[p["probabilities"][c] for c in CLASSES] for p in got]
        assert [list(p["probabilities"]) for p in got] == [CLASSES] * 5
        assert np.max(np.abs(np.array(probabilities) - expected)) <= 1e-5
        assert [p["label"] for p in got] == [CLASSES[k] for k in expected.argmax(axis=1)]
        assert item["properties"]["label"]["enum"] == CLASSES
        assert item["properties"]["probabilities"]["required"] == CLASSES
    lines = [json.loads(line) for line in predlog.read_text().splitlines()]
    assert sorted((line["role"], line["index"]) for line in lines) == sorted(
        (role, i) for role in ("primary", "candidate") for i in range(5)
    )
    answer_keys = {"prediction"} if task == "regression" else {"label", "probabilities"}
    for line in lines:
        assert answer_keys <= set(line) and "probability" not in line
        served = got[line["index"]]
        assert all(line[k] == served[k] for k in answer_keys)
    assert [r.status_code for r in hostile] == [400, 400], [r.text for r in hostile]
    assert "x1" in hostile[0].json()["error"] and "group" in hostile[1].json()["error"]
