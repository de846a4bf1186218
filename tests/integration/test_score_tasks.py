"""`tabrepro score` and drift per task on a packaged regression and multiclass model: the scores file holds
evaluate's columns with evaluate's values (the ONNX graph against the pipeline), and the drift of the scored
rows is read against the packaged score reference (regression: the predictions; multiclass: the predicted
classes). Uses the per-task packaging of tests/integration/test_package_tasks.py (skipped where it is absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabrepro.batch.scoring import score_file
from tabrepro.config.params import DriftParams
from tabrepro.monitoring.drift import DriftAccumulator, compute_reference_stats

packaging = pytest.importorskip("tests.integration.test_package_tasks", reason="per-task packaging not merged yet")


@pytest.mark.parametrize(("task", "family"), [("regression", "xgboost"), ("multiclass", "logreg")])
def test_score_and_drift_per_task_match_evaluate(tmp_path: Path, task: str, family: str) -> None:
    paths, contract, _, _, manifest, _ = packaging._package(tmp_path, task, family)
    train = pd.read_parquet(Path(paths.prepared) / "train.parquet")
    drift = DriftAccumulator(compute_reference_stats(train, contract, bins=10), manifest.score_reference, contract)
    output = tmp_path / "scores.csv"
    summary = score_file(
        contract.source,
        output,
        serving_dir=paths.serving,
        progress=False,
        on_chunk=lambda chunk, scores: drift.update_text(chunk.to_pandas(), scores),
    )
    assert summary.rows_scored == summary.rows_read == 400
    scored, evaluated = pd.read_csv(output), pd.read_parquet(paths.predictions)
    columns = [c for c in evaluated.columns if c not in (contract.key_column, "target")]
    assert list(scored.columns) == [contract.key_column, *columns, "model_version"]
    both = evaluated.merge(scored, on=contract.key_column, suffixes=("_evaluate", "_score"))
    assert len(both) == len(evaluated) == 100
    numbers = [c for c in columns if c != "label"]
    for column in numbers:  # float32 scores against evaluate's float64: agree to float32's precision
        np.testing.assert_allclose(both[f"{column}_score"], both[f"{column}_evaluate"], rtol=1e-5, atol=1e-6)
    if task == "multiclass":
        assert (both["label_score"] == both["label_evaluate"]).all()
    score = drift.report(DriftParams())["score"]
    assert score["of"] == ("prediction" if task == "regression" else "predicted class")
    assert score["psi"] < 0.1 and not score["drifted"]  # the whole file against its own test split: no drift


@pytest.mark.parametrize(("task", "family"), [("regression", "xgboost"), ("multiclass", "logreg")])
def test_dask_scores_a_task_as_one_process_does(tmp_path: Path, task: str, family: str) -> None:
    from tabrepro.batch.distributed import open_client, score_on_dask

    paths, contract, *_ = packaging._package(tmp_path, task, family)
    score_file(contract.source, tmp_path / "one.parquet", serving_dir=paths.serving, progress=False, threads=1)
    with open_client(workers=1) as client:
        score_on_dask(contract.source, tmp_path / "parts", serving_dir=paths.serving, client=client)
    one, part = (pd.read_parquet(p) for p in (tmp_path / "one.parquet", tmp_path / "parts" / "part-00000.parquet"))
    assert "prediction" in part.columns if task == "regression" else "probability__mid" in part.columns
    pd.testing.assert_frame_equal(part, one)  # the same columns and values, bit for bit (one thread each)


@pytest.mark.parametrize(("task", "family"), [("regression", "xgboost"), ("multiclass", "logreg")])
def test_drift_of_a_table_scores_it_per_task(tmp_path: Path, task: str, family: str) -> None:
    from tabrepro.io.staging import write_json
    from tabrepro.monitoring.check import check_drift

    paths, contract, *_ = packaging._package(tmp_path, task, family)
    train = pd.read_parquet(Path(paths.prepared) / "train.parquet")
    write_json(tmp_path / "reference.json", compute_reference_stats(train, contract, bins=10))
    report = check_drift(
        Path(contract.source),
        reference=tmp_path / "reference.json",
        serving_dir=Path(paths.serving),
        params=DriftParams(),
    )
    assert report.inputs.scored == 400 and report.score is not None
    assert report.score.name == ("prediction" if task == "regression" else "predicted class")
    assert report.score.psi < 0.1 and not report.decision.retrain
