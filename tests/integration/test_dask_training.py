"""Training on a real Dask ``LocalCluster`` (2 workers, in-process for speed): the model exports with the Dask-fitted
preprocessor as one ONNX graph that reproduces the pipeline; its test ROC-AUC on Telco is within 0.005 of the
in-memory model's; and the train stage on ``engine: dask`` feeds evaluate and package (parity gate included)."""

from __future__ import annotations

from pathlib import Path

import dask
import numpy as np
import pandas as pd
import pytest
import yaml
from distributed import Client, LocalCluster, wait
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from xgboost import XGBClassifier

from tabrepro.config.params import (
    ModelParams,
    PackageParams,
    PathsParams,
    SplitParams,
    TrainParams,
    load_params,
)
from tabrepro.contract.spec import load_contract
from tabrepro.errors import DataError
from tabrepro.io.persistence import dump_skops
from tabrepro.io.raw import read_raw
from tabrepro.io.staging import read_json
from tabrepro.serving.runtime import create_session, feeds_from_records
from tabrepro.stages import train
from tabrepro.stages.prepare import clean_table, split_data
from tabrepro.training import distributed
from tabrepro.training.features import build_preprocessor, transform_frame
from tabrepro.training.modeling import build_model, fit_model
from tabrepro.training.onnx_export import check_parity, frame_to_records, to_onnx
from tests.conftest import REPO, package_sample, sample_params


@pytest.fixture(scope="module")
def client():
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def params() -> dict:
    return load_params(REPO / "params.yaml")


@pytest.fixture(scope="module")
def telco(params, tmp_path_factory) -> tuple[dict[str, pd.DataFrame], Path]:
    """The full Telco table split as prepare splits it, in memory and as Parquet files."""
    contract = load_contract({**params["data"], "source": str(REPO / params["data"]["source"])})
    clean, _ = clean_table(read_raw(contract.source, fmt="csv"), contract, source="telco", row_label="line")
    splits = split_data(
        clean, target=contract.target.column, **SplitParams.model_validate(params["split"]).model_dump()
    )
    folder = tmp_path_factory.mktemp("telco")
    for name, frame in splits.items():
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    return splits, folder


def test_dask_model_is_one_onnx_graph_with_parity_and_the_in_memory_auc(client, params, telco, telco_contract):
    splits, folder = telco
    section = ModelParams.model_validate(params["model"]).family("xgboost")
    estimator = build_model("xgboost", dict(section.params), seed=42, n_jobs=1)
    stopping = section.early_stopping_rounds

    tables = {s: distributed.read_table(folder / f"{s}.parquet", partitions=2) for s in ("train", "val")}
    preprocessor = distributed.fit_preprocessor(build_preprocessor(telco_contract), tables["train"])
    target = telco_contract.target.column
    frames = {s: distributed.transform_partitions(preprocessor, t, target=target) for s, t in tables.items()}
    frames = dict(zip(frames, dask.persist(*frames.values()), strict=True))
    wait(list(frames.values()))
    assert all(len(keys) > 0 for keys in client.has_what().values())  # both workers hold rows
    on_dask = distributed.fit_xgboost(
        client, estimator, frames["train"], frames["val"], target=target, early_stopping_rounds=stopping
    )
    assert type(on_dask.model) is XGBClassifier
    assert on_dask.model.get_booster().num_boosted_rounds() == on_dask.best_iteration + 1
    assert len(on_dask.curves["val"]["auc"]) > on_dask.best_iteration

    pipeline = Pipeline([("pre", preprocessor), ("model", on_dask.model)])
    test = splits["test"]
    session = create_session(to_onnx(pipeline, telco_contract), ["CPUExecutionProvider"])
    feeds = feeds_from_records(frame_to_records(test, telco_contract), telco_contract)
    p_onnx = session.run(["probabilities"], feeds)[0][:, 1]
    p_dask = pipeline.predict_proba(test)[:, 1]
    assert check_parity(p_dask, p_onnx, threshold=0.5, tolerance=1e-5).max_abs_diff <= 1e-5

    in_memory_pre = build_preprocessor(telco_contract).fit(splits["train"])
    xs = {s: (transform_frame(in_memory_pre, f).to_numpy(), f[target].to_numpy()) for s, f in splits.items()}
    local = fit_model(estimator, *xs["train"], *xs["val"], early_stopping_rounds=stopping)
    auc_local = roc_auc_score(xs["test"][1], local.model.predict_proba(xs["test"][0])[:, 1])
    auc_dask = roc_auc_score(test[target], p_dask)
    assert abs(auc_dask - auc_local) <= 0.005, (auc_dask, auc_local)


SMALL_XGB = {"n_estimators": 300, "learning_rate": 0.1, "max_depth": 3}


def test_train_stage_on_dask_feeds_package_and_refuses_a_stale_preprocessor(client, params, tmp_path, monkeypatch):
    model = ModelParams(name="xgboost", params=SMALL_XGB, early_stopping_rounds=20)
    on_dask = TrainParams(n_jobs=1, engine="dask", scheduler=client.scheduler.address)
    package = PackageParams(build_bento=False, latency_rows=20)
    # the suite's stage chain, trained on Dask (a private run: this test changes it)
    package_sample(
        tmp_path,
        params,
        rows=1500,
        seed=3,
        model=model,
        train=on_dask,
        tune_train=TrainParams(n_jobs=1),
        package=package,
    )
    monkeypatch.chdir(tmp_path)
    work = sample_params(params)
    paths, contract = PathsParams.model_validate(work["paths"]), load_contract(work["data"])
    meta = read_json(Path(paths.model) / "meta.json")
    assert meta["engine"] == "dask" and meta["feature_names"][0] == "num__tenure"
    parity = read_json(paths.package_report)["parity"]
    assert parity["max_abs_diff"] <= 1e-5 and parity["label_flips"] == 0

    model_bytes = (Path(paths.model) / "model.json").read_bytes()
    val = pd.read_parquet(Path(paths.prepared) / "val.parquet")
    dump_skops(build_preprocessor(contract).fit(val), paths.preprocessor)  # fitted on other rows than the train split
    stale = r"preprocessor\.skops: the preprocessor package exports differs .*: median \S+ on Dask, \S+ in the saved"
    with pytest.raises(DataError, match=stale):
        train.run(paths, contract, model, on_dask, seed=0)
    assert (Path(paths.model) / "model.json").read_bytes() == model_bytes
    assert np.isfinite(yaml.safe_load((Path(paths.train_live) / "metrics.json").read_text())["model_val_roc_auc"])
