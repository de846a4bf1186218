"""Scoring and drift on a real Dask ``LocalCluster``: the partitioned output equals the single-process scorer
file by file (ids, probabilities, rejects and their messages), ``tabrepro drift`` gives the one-process report
number for number, and a failed run keeps the previous output folder."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster

from tabrepro.batch.distributed import PARTS_FILE, score_on_dask
from tabrepro.batch.scoring import score_file
from tabrepro.config.params import DriftParams
from tabrepro.errors import DataError
from tabrepro.io.tables import expand_inputs
from tabrepro.monitoring.check import check_drift

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    """Two single-threaded workers in this process (real scheduling, no start-up of worker processes), behind a
    TCP scheduler that a `tabrepro score --scheduler` in another process can reach."""
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, protocol="tcp", host="127.0.0.1", dashboard_address=":0"
    )
    with cluster, Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def inputs(packaged: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample's raw rows in three Parquet files, with broken rows in two of them (a bad number, an unknown
    level, an id repeated within the file, a missing id), and a shift of MonthlyCharges in the last."""
    raw = pd.read_csv(packaged / "raw" / "telco.csv", dtype="str", keep_default_na=False)
    folder = tmp_path_factory.mktemp("dask_inputs")
    parts = np.array_split(np.arange(len(raw)), 3)
    for i, rows in enumerate(parts):
        part = raw.iloc[rows].reset_index(drop=True)
        if i == 1:
            part.loc[3, "tenure"] = "five"
            part.loc[7, "Contract"] = "Three year"
            part.loc[20, "customerID"] = part.loc[2, "customerID"]
        if i == 2:
            part.loc[0, "customerID"] = ""
            part["MonthlyCharges"] = (part["MonthlyCharges"].astype(float) * 1.4).clip(upper=118).map("{:.2f}".format)
        part.to_parquet(folder / f"batch-{i}.parquet", index=False)
    return folder


def _serving(packaged: Path) -> Path:
    return packaged / "models" / "serving"


def test_partitioned_output_equals_the_single_process_scorer(packaged, inputs, client, tmp_path):
    summary = score_on_dask(inputs / "*.parquet", tmp_path / "scores", serving_dir=_serving(packaged), client=client)
    files = sorted(inputs.glob("*.parquet"))
    rejects = pd.read_csv(tmp_path / "scores.rejects.csv", dtype={"id": "str"}, keep_default_na=False)
    parts = json.loads((tmp_path / "scores" / PARTS_FILE).read_text())["parts"]
    assert [p["file"] for p in parts] == [str(f) for f in files]
    assert sorted(p.name for p in (tmp_path / "scores").iterdir()) == [PARTS_FILE] + [p["part"] for p in parts]
    totals = [0, 0, 0]
    for i, source in enumerate(files):
        alone = score_file(source, tmp_path / f"alone-{i}.parquet", serving_dir=_serving(packaged), progress=False)
        one_thread = tmp_path / f"one-thread-{i}.parquet"
        score_file(source, one_thread, serving_dir=_serving(packaged), progress=False, threads=1)
        part, expected = pd.read_parquet(tmp_path / "scores" / parts[i]["part"]), pd.read_parquet(one_thread)
        pd.testing.assert_frame_equal(part, expected)  # same ids in the same order, bitwise probabilities
        default = pd.read_parquet(tmp_path / f"alone-{i}.parquet")  # all-core session: float32 sums reordered
        np.testing.assert_allclose(part["probability"], default["probability"], atol=1e-6, rtol=0)
        mine = rejects[rejects["file"] == str(source)].drop(columns="file").reset_index(drop=True)
        theirs = pd.read_csv(tmp_path / f"alone-{i}.rejects.csv", dtype={"id": "str"}, keep_default_na=False)
        assert mine.to_dict("records") == theirs.to_dict("records")  # row numbers, ids, messages
        totals = [t + x for t, x in zip(totals, (alone.rows_read, alone.rows_scored, alone.rows_rejected), strict=True)]
    assert [summary.rows_read, summary.rows_scored, summary.rows_rejected] == totals
    assert summary.rows_rejected == len(rejects) == 4
    assert set(rejects["reason"].str.split(":").str[0]) == {"tenure", "Contract", "customerID"}


def test_drift_on_dask_is_the_one_process_report(packaged, inputs, client):
    arguments = {
        "reference": packaged / "models" / "reference_stats.json",
        "serving_dir": _serving(packaged),
        "params": DriftParams(),
    }
    one = check_drift(inputs, **arguments)
    on_dask = check_drift(inputs, client=client, **arguments)
    assert on_dask == one  # every count, statistic, p-value, figure series and the decision
    assert [name for name, f in one.features.items() if f.drifted] == ["MonthlyCharges"]
    assert one.features["Contract"].unknown_values == {"Three year": 1}
    assert one.inputs.refused == 2 and one.inputs.files == [str(f) for f in sorted(inputs.iterdir())]


def test_a_failed_run_keeps_the_previous_folder_and_a_rerun_replaces_it(packaged, inputs, client, tmp_path):
    output = tmp_path / "scores"
    score_on_dask(inputs, output, serving_dir=_serving(packaged), client=client)
    before = {p.name: p.read_bytes() for p in output.iterdir()}
    (output.with_name("scores.partial")).mkdir()
    (output.with_name("scores.partial") / "part-00007.parquet.partial").write_bytes(b"left by a killed run")
    bad = tmp_path / "bad"
    bad.mkdir()
    for source in sorted(inputs.iterdir()):
        (bad / source.name).write_bytes(source.read_bytes())
    pd.read_parquet(bad / "batch-1.parquet").drop(columns="tenure").to_parquet(bad / "batch-1.parquet")
    with pytest.raises(DataError, match=r"(?s)batch-1.parquet: missing column\(s\) \['tenure'\].*was not changed"):
        score_on_dask(bad, output, serving_dir=_serving(packaged), client=client)
    assert {p.name: p.read_bytes() for p in output.iterdir()} == before
    score_on_dask(inputs / "batch-[02].parquet", output, serving_dir=_serving(packaged), client=client)
    assert sorted(p.name for p in output.iterdir()) == [PARTS_FILE, "part-00000.parquet", "part-00001.parquet"]
    assert not output.with_name("scores.partial").exists()


def test_cli_on_a_scheduler_address(packaged, inputs, client, tmp_path):
    """`tabrepro score --scheduler tcp://...`: another process's cluster; a glob input; CSV rejects by default;
    `--drift-report` merged from the workers' accumulators gives `tabrepro drift`'s report of the same files."""
    pattern = str(inputs / "batch-*.parquet")
    command = [sys.executable, "-m", "tabrepro.cli", "score", "--input", pattern, "--output", str(tmp_path / "out")]
    command += ["--serving-dir", str(_serving(packaged)), "--no-progress", "--params", str(REPO / "params.yaml")]
    command += ["--drift-report", str(tmp_path / "drift" / "drift.json")]
    done = subprocess.run(
        [*command, "--scheduler", client.scheduler.address], capture_output=True, text=True, timeout=120, cwd=packaged
    )
    assert done.returncode == 0, done.stderr
    assert "1500 rows read, 1496 scored, 4 rejected" in done.stderr
    assert len(pd.read_csv(tmp_path / "out.rejects.csv")) == 4
    assert len(pd.read_parquet(tmp_path / "out")) == 1496  # the folder reads as one Parquet dataset
    scored = json.loads((tmp_path / "drift" / "drift.json").read_text())
    alone = check_drift(
        Path(pattern),
        reference=packaged / "models" / "reference_stats.json",
        serving_dir=_serving(packaged),
        params=DriftParams(),
    )
    assert scored["features"] == alone.to_json()["features"] and scored["decision"] == alone.to_json()["decision"]
    # scores: of the rows scored, which for `score` excludes the repeated and the missing id (the service takes them)
    assert alone.score is not None and (scored["score"]["values"], alone.score.values) == (1496, 1498)


def test_cli_on_a_local_cluster_of_worker_processes(packaged, inputs, tmp_path):
    """`tabrepro score --workers 2`: worker processes each verify the model; the summary counts every file."""
    command = [sys.executable, "-m", "tabrepro.cli", "score", "--input", str(inputs), "--no-progress"]
    command += ["--serving-dir", str(_serving(packaged)), "--workers", "2", "--memory-limit", "1GiB"]
    done = subprocess.run(
        [*command, "--output", str(tmp_path / "out"), "--summary", str(tmp_path / "summary.json")],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["rows_read"], summary["rows_rejected"]) == (1500, 4)
    single = subprocess.run(
        [*command[:-4], "--output", str(tmp_path / "x.csv")], capture_output=True, text=True, timeout=60
    )
    assert single.returncode == 2 and "a folder or glob is scored on Dask" in single.stderr
    assert "Traceback" not in single.stderr


def test_inputs_are_named_files_in_a_fixed_order_and_bad_ones_are_refused(inputs, packaged, client, tmp_path):
    (tmp_path / "_SUCCESS").write_text("")
    (tmp_path / "b.parquet").write_bytes((inputs / "batch-0.parquet").read_bytes())
    (tmp_path / "a.parquet").write_bytes((inputs / "batch-1.parquet").read_bytes())
    assert expand_inputs(tmp_path) == [tmp_path / "a.parquet", tmp_path / "b.parquet"]
    assert expand_inputs(f"{tmp_path}/b*") == [tmp_path / "b.parquet"]
    with pytest.raises(DataError, match=r"\*\.csv: the pattern matches no file"):
        expand_inputs(tmp_path / "*.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no .csv or .parquet files in this folder"):
        expand_inputs(tmp_path / "empty")
    (tmp_path / "c.csv").write_text("customerID\nx\n")
    with pytest.raises(DataError, match="mixes CSV and Parquet files"):
        score_on_dask(tmp_path, tmp_path / "out", serving_dir=_serving(packaged), client=client)
    with pytest.raises(DataError, match="is inside the output folder"):
        score_on_dask(inputs, inputs, serving_dir=_serving(packaged), client=client)


def test_a_worker_killed_mid_part_leaves_every_row_exactly_once(packaged, inputs, tmp_path):
    """SIGKILL the worker process writing a part: Dask reruns its task on a new worker, the rerun replaces the
    part, and the published folder holds each row once, as the single-process scorer scores it."""
    raw = pd.read_parquet(inputs / "batch-0.parquet")
    big = pd.concat([raw] * 40, ignore_index=True).assign(customerID=lambda d: [f"K{i}" for i in range(len(d))])
    (tmp_path / "in").mkdir()
    big.to_parquet(tmp_path / "in" / "big.parquet", index=False)
    expected = tmp_path / "expected.parquet"
    score_file(tmp_path / "in" / "big.parquet", expected, serving_dir=_serving(packaged), progress=False, threads=1)
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        pids = client.run(os.getpid)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            run = pool.submit(
                score_on_dask,
                tmp_path / "in",
                tmp_path / "out",
                serving_dir=_serving(packaged),
                client=client,
                chunk_rows=500,
            )
            _wait_for(lambda: any((tmp_path / "out.partial").glob("*/part-00000.parquet.partial")))
            os.kill(next(iter(pids.values())), signal.SIGKILL)
            summary = run.result(timeout=120)
        assert client.run(os.getpid) != pids  # the task ran again on a new worker process
    assert summary.rows_scored == len(big)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "out" / "part-00000.parquet"), pd.read_parquet(expected))


def _wait_for(condition, *, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the part to be written")
        time.sleep(0.02)
