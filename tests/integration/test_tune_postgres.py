"""The tune stage and ``tabrepro tune-worker`` processes share one study on a real PostgreSQL 15 (started by
``tests/support/postgres.py``): the result is the best of all finished trials, a worker SIGKILLed mid-trial leaves
no trial RUNNING (heartbeat, grace period, retry), and the database going away fails the stage with a clear message
and loses no finished trial. The password reaches the processes in PGPASSWORD only, and is never printed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
import yaml

from tabrepro.config.params import load_params
from tabrepro.io.staging import read_json
from tests.conftest import REPO, sample_params
from tests.support import postgres

postgres_server = postgres.postgres_server  # the session's PostgreSQL (a fixture)

STUDY = "telco_churn-xgboost"
MODEL = {  # a trial takes long enough that a worker can be caught mid-trial, short enough for seconds in all
    "name": "xgboost",
    "early_stopping_rounds": 10,
    "params": {"n_estimators": 80, "learning_rate": 0.1},
    "search_space": {
        "max_depth": {"distribution": "int", "low": 2, "high": 6},
        "learning_rate": {"distribution": "log_float", "low": 0.05, "high": 0.2},
    },
}
RUNNING, COMPLETE, FAIL = (optuna.trial.TrialState[s] for s in ("RUNNING", "COMPLETE", "FAIL"))


@pytest.fixture(scope="module")
def featurized_base(sample_pipelines) -> Path:
    """1,500 prepared and featurized rows (the suite's shared run: read only); each test works on a copy."""
    return sample_pipelines(rows=1500, seed=1, until="featurize")


def _project(base: Path, dest: Path, storage: str, **tune: object) -> Path:
    """A copy of ``base`` whose params search ``MODEL`` in the study at ``storage`` (one core per process)."""
    shutil.copytree(base, dest)
    p = sample_params(load_params(REPO / "params.yaml"))
    p["model"], p["train"] = MODEL, {**p["train"], "n_jobs": 1}
    p["tune"] = {**p["tune"], "cv_folds": 3, "n_startup_trials": 4, "storage": storage, **tune}
    (dest / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    return dest


def _start(folder: Path, server: postgres.PostgresServer, *args: str) -> subprocess.Popen:
    """The stage (no args) or ``tabrepro tune-worker --worker N``, with the password in the environment only."""
    module = ["tabrepro.cli", "tune-worker", *args] if args else ["tabrepro.stages.tune"]
    env = {**os.environ, **server.env}
    return subprocess.Popen(
        [sys.executable, "-m", *module],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(*procs: subprocess.Popen, timeout: float = 240) -> list[tuple[int, str]]:
    done = []
    try:
        for proc in procs:
            output, _ = proc.communicate(timeout=timeout)
            done.append((proc.returncode, output))
    finally:
        for proc in procs:
            proc.kill()
    return done


def _trials(server: postgres.PostgresServer, url: str) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name=STUDY, storage=server.storage(url)).trials
    except KeyError:  # not created yet
        return []


def _wait_for(condition: Callable[[], list], what: str, timeout: float = 120) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _hold_until_all_joined(
    procs: dict[int, subprocess.Popen], server: postgres.PostgresServer, url: str, timeout: float = 180
) -> None:
    """Pause each process (SIGSTOP) as soon as it holds a trial, and resume them all once every one holds one: on
    a loaded machine the first process to start could otherwise finish the study before a late one joined it.
    Waits on that condition, not on time; a process that exits first, or the timeout, fails the test."""
    paused: set[int] = set()
    deadline = time.monotonic() + timeout
    try:
        while paused != set(procs):
            joined = {t.user_attrs["worker"] for t in _trials(server, url) if "worker" in t.user_attrs}
            for worker in sorted(joined - paused):
                procs[worker].send_signal(signal.SIGSTOP)
                paused.add(worker)
            exited = [w for w, proc in procs.items() if w not in paused and proc.poll() is not None]
            assert not exited, f"process {exited} exited before its first trial"
            assert time.monotonic() < deadline, f"timed out waiting for each process's first trial; {paused} had one"
            time.sleep(0.05)
    finally:
        for worker in paused:
            procs[worker].send_signal(signal.SIGCONT)


def test_the_stage_and_two_workers_share_one_study(featurized_base, tmp_path, postgres_server):
    url, n_trials = postgres_server.create_database(), 9
    # a paused trial sends no heartbeat: a grace period longer than any pause keeps it alive
    folder = _project(featurized_base, tmp_path / "p", url, n_trials=n_trials, grace_period=600)
    procs = [_start(folder, postgres_server), *(_start(folder, postgres_server, "--worker", w) for w in "12")]
    try:
        _hold_until_all_joined(dict(enumerate(procs)), postgres_server, url)
    except AssertionError as exc:
        for proc in procs:
            proc.kill()
        raise AssertionError("\n".join([str(exc), *(output for _, output in _finish(*procs, timeout=30))])) from None
    for code, output in _finish(*procs):
        assert code == 0, output
        assert postgres_server.password not in output
    trials = _trials(postgres_server, url)
    finished = [t for t in trials if t.state.is_finished()]
    assert n_trials <= len(finished) <= n_trials + 2  # each other process may finish the trial it had in flight
    assert not [t for t in trials if t.state == RUNNING]
    assert {t.user_attrs["worker"] for t in finished} == {0, 1, 2}
    best_value = max(t.value for t in trials if t.state == COMPLETE)
    best_trials = [t for t in trials if t.state == COMPLETE and t.value == best_value]
    best = read_json(folder / "models" / "best_params.json")
    assert best["cv_roc_auc"] == pytest.approx(best_value, abs=1e-6)
    assert any(best["params"] == {**MODEL["params"], **t.params} for t in best_trials)
    assert read_json(folder / "models" / "tune" / "study.json")["storage"] == "database (tune.storage)"


def test_a_worker_killed_mid_trial_is_failed_retried_and_the_study_completes(
    featurized_base, tmp_path, postgres_server
):
    url, n_trials = postgres_server.create_database(), 8
    folder = _project(featurized_base, tmp_path / "p", url, n_trials=n_trials, heartbeat_interval=1, grace_period=3)
    stage, worker = _start(folder, postgres_server), _start(folder, postgres_server, "--worker", "1")
    try:
        running = _wait_for(
            lambda: [
                t for t in _trials(postgres_server, url) if t.state == RUNNING and t.user_attrs.get("worker") == 1
            ],
            "worker 1 to be mid-trial",
        )[0]
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
        assert _trials(postgres_server, url)[running.number].state == RUNNING, "the worker was killed mid-trial"
        [(code, output)] = _finish(stage)
    finally:
        worker.kill()
        stage.kill()
    assert code == 0, output
    trials = _trials(postgres_server, url)
    assert trials[running.number].state == FAIL  # failed by the heartbeat's grace period, not left RUNNING
    assert not [t for t in trials if t.state == RUNNING]
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == running.number]
    assert len(retries) == 1 and retries[0].params == trials[running.number].params  # re-queued, same params
    assert sum(t.state.is_finished() and t.state != FAIL for t in trials) >= n_trials


def test_the_database_going_away_fails_the_stage_and_loses_no_finished_trial(
    featurized_base, tmp_path, postgres_server
):
    url = postgres_server.create_database()
    folder = _project(featurized_base, tmp_path / "p", url, n_trials=60, heartbeat_interval=1, grace_period=3)
    stage = _start(folder, postgres_server)
    try:
        _wait_for(lambda: sum(t.state == COMPLETE for t in _trials(postgres_server, url)) >= 2, "2 finished trials")
        seen = {t.number: (t.state, t.value, t.params) for t in _trials(postgres_server, url) if t.state.is_finished()}
        postgres_server.stop("immediate")
        [(code, output)] = _finish(stage, timeout=120)
    finally:
        stage.kill()
        if not postgres_server.running():
            postgres_server.start()
    assert code == 2, output  # the database named in params is unusable: a clear message, no traceback
    assert f"tune.storage: the database 'postgresql+psycopg://tabrepro@127.0.0.1:{postgres_server.port}" in output
    assert f"failed during the search of study '{STUDY}'" in output and "rerun" in output
    assert "Traceback" not in output and postgres_server.password not in output
    assert not (folder / "models" / "best_params.json").exists() and not (folder / "reports" / "tune").exists()
    after = {t.number: (t.state, t.value, t.params) for t in _trials(postgres_server, url)}
    assert {n: after.get(n) for n in seen} == seen
