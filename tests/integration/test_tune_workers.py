"""Several worker processes share one Optuna study through a database (SQLite here; PostgreSQL, with its faults, in
test_tune_postgres.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml

from tabrepro.config.params import TuneParams
from tabrepro.io.staging import read_json
from tabrepro.stages import run_stage, tune
from tabrepro.training import study_storage
from tabrepro.training.study_storage import open_storage, settle_trials
from tests.conftest import REPO, sample_params

N_TRIALS = 16
NEGATIVE = {"distribution": "float", "low": -1, "high": 1}  # gamma must be >= 0


@pytest.fixture
def featurized(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, params: dict, sample_pipelines) -> Path:
    """1,500 prepared and featurized rows (a copy of the suite's shared run) whose params search in ``study.db``."""
    sample_pipelines.copy(tmp_path, rows=1500, seed=1, until="featurize")
    shutil.copytree(REPO / "conf" / "contracts", tmp_path / "conf" / "contracts")  # what conf/data/*.yaml name
    storage = f"sqlite:///{tmp_path}/study.db"
    p = {
        **sample_params(params),
        "model": {
            "name": "xgboost",
            "early_stopping_rounds": 10,
            "params": {"n_estimators": 150, "learning_rate": 0.1},
            "search_space": {"max_depth": {"distribution": "int", "low": 2, "high": 6}},
        },
        "tune": {**params["tune"], "n_trials": N_TRIALS, "cv_folds": 3, "n_startup_trials": 4, "storage": storage},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _trials(storage: str) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name="telco_churn-xgboost", storage=storage).trials
    except KeyError:  # not created yet
        return []


def test_a_worker_and_the_stage_share_one_study(featurized: Path):
    storage = yaml.safe_load((featurized / "params.yaml").read_text())["tune"]["storage"]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "tabrepro.cli", "tune-worker", "--worker", "1"],
        cwd=featurized,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not _trials(storage) and time.monotonic() < deadline:
            time.sleep(0.5)
        run_stage("tune", tune._main, [])
        output, _ = worker.communicate(timeout=120)
    finally:
        worker.kill()
    assert worker.returncode == 0, output
    trials = _trials(storage)
    finished = [t for t in trials if t.state.is_finished()]
    assert N_TRIALS <= len(finished) <= N_TRIALS + 1  # a trial in flight when the budget is reached may finish
    assert {t.user_attrs.get("worker") for t in finished} == {0, 1}
    best = read_json("models/best_params.json")
    assert best["cv_roc_auc"] == pytest.approx(max(t.value for t in trials if t.state.name == "COMPLETE"), abs=1e-6)


def test_worker_refuses_without_a_database(featurized: Path):
    params = yaml.safe_load((featurized / "params.yaml").read_text())
    params["tune"]["storage"] = None
    (featurized / "params.yaml").write_text(yaml.safe_dump(params))
    proc = subprocess.run(
        [sys.executable, "-m", "tabrepro.cli", "tune-worker"], cwd=featurized, capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "workers share a study only through a database" in proc.stderr


def _worker(folder: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "tabrepro.cli", "tune-worker", *args]
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=300, check=False)


def test_a_worker_on_a_clone_joins_with_the_experiments_overrides(featurized: Path):
    """On another machine params.yaml is the committed one (no storage): the worker composes conf/ with the
    overrides the experiment was run with, as `dvc exp run -S` does, and searches the study they name."""
    storage = f"sqlite:///{featurized}/clone.db"
    _set(featurized, tune={"storage": None})
    overrides = ["model=xgboost", "model.params.n_estimators=100", "tune.cv_folds=3", "train.n_jobs=1"]
    done = _worker(featurized, "--conf", str(REPO / "conf"), *overrides, f"tune.storage={storage!r}", "tune.n_trials=3")
    assert done.returncode == 0, done.stderr
    trials = optuna.load_study(study_name="telco_churn-xgboost", storage=storage).trials
    assert len([t for t in trials if t.state.is_finished()]) == 3
    assert {t.user_attrs["worker"] for t in trials} == {1}
    assert trials[0].params["max_depth"] == 3 and "worker 1 done: xgboost study" in done.stderr  # conf's trial 0


def test_worker_messages_name_the_params_file_or_the_overrides_given(featurized: Path):
    storage = yaml.safe_load((featurized / "params.yaml").read_text())["tune"]["storage"]
    _set(featurized, model={"params": {"n_estimators": 150, "subsample": 1.5}})
    (featurized / "params.yaml").rename(featurized / "other.yaml")
    conf = ["--conf", str(REPO / "conf")]
    cases = {
        ("--params", "other.yaml"): "other.yaml: model.params.subsample",
        (*conf, "model=xgboost", "model.params.subsample=1.5", f"tune.storage={storage!r}"): (
            "with overrides ['model=xgboost', 'model.params.subsample=1.5', \"tune.storage="
        ),
        (*conf, "tune.n_trials=3"): "with overrides ['tune.n_trials=3']: tune.storage is null",
        (
            "--params",
            "other.yaml",
            "tune.n_trials=3",
        ): "--params other.yaml and overrides ['tune.n_trials=3']: give one",
    }
    for args, fragment in cases.items():
        done = _worker(featurized, *args)
        _refused(done, fragment)
        assert "params.yaml:" not in done.stderr, done.stderr
    assert _trials(storage) == [], "no trial may run"


def _set(folder: Path, **sections: dict) -> None:
    """Update sections of ``folder/params.yaml`` (one level deep)."""
    params = yaml.safe_load((folder / "params.yaml").read_text())
    for key, values in sections.items():
        params[key] = {**params[key], **values}
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _stage_tune(folder: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "tabrepro.stages.tune"]
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=300, check=False)


def _refused(done: subprocess.CompletedProcess, *fragments: str) -> None:
    assert done.returncode == 2, done.stderr
    assert all(f in done.stderr for f in fragments), done.stderr
    assert "Traceback" not in done.stderr


def _nothing_written(folder: Path) -> None:
    assert not (folder / "models" / "best_params.json").exists() and not (folder / "reports" / "tune").exists()
    assert not list(folder.glob(".staging-*"))


def test_a_timeout_that_binds_fails_the_stage_and_writes_nothing(featurized: Path):
    _set(featurized, tune={"storage": None, "n_trials": 30, "timeout": 0.05})
    done = _stage_tune(featurized)
    _refused(done, "params.yaml: tune.timeout: the search ran out of its 0.05 s budget after", "of 30 trials")
    assert "Set tune.timeout: null" in done.stderr
    _nothing_written(featurized)


def test_the_stage_records_the_size_of_its_search(featurized: Path):
    _set(featurized, tune={"storage": None, "n_trials": 3})
    done = _stage_tune(featurized)
    assert done.returncode == 0, done.stderr
    metrics = read_json(featurized / "reports" / "tune" / "metrics.json")
    assert metrics["n_trials_requested"] == 3 and metrics["n_trials_complete"] + metrics["n_trials_pruned"] == 3
    # a budget that binds fails the stage, so the file has no "budget_bound" flag that could only be false
    assert "budget_bound" not in metrics and metrics["timeout_s"] is None


@pytest.mark.parametrize(
    ("command", "model", "key"),
    [
        ("stage", {"params": {"n_estimators": 150, "reg_alpha": -1}}, "model.params.reg_alpha: expected a number >= 0"),
        ("stage", {"params": {"n_estimators": 0}}, "model.params.n_estimators: expected an integer >= 1"),
        ("worker", {"params": {"n_estimators": 150, "subsample": 1.5}}, "model.params.subsample"),
        ("worker", {"params": {"max_dept": 3}}, "model.params: unknown hyper-parameter(s) ['max_dept']"),
        ("worker", {"search_space": {"gamma": NEGATIVE}}, "model.search_space.gamma: the range [-1, 1]"),
    ],
)
def test_hyperparameters_are_checked_before_trial_0(featurized: Path, command: str, model: dict, key: str):
    """The stage and a worker refuse them before any trial, also a searched one's configured value (subsample)."""
    _set(featurized, model=model)
    if command == "stage":
        done = _stage_tune(featurized)
    else:
        done = subprocess.run(
            [sys.executable, "-m", "tabrepro.cli", "tune-worker"], cwd=featurized, capture_output=True, text=True
        )
    _refused(done, f"params.yaml: {key}")
    storage = yaml.safe_load((featurized / "params.yaml").read_text())["tune"]["storage"]
    assert _trials(storage) == [], "no trial may run"
    _nothing_written(featurized)


def test_a_worker_before_featurize_names_the_missing_file_and_the_stage(featurized: Path):
    (featurized / "data" / "features" / "train.parquet").unlink()
    done = subprocess.run(
        [sys.executable, "-m", "tabrepro.cli", "tune-worker"], cwd=featurized, capture_output=True, text=True
    )
    _refused(done, "data/features/train.parquet: not found", "dvc repro featurize")


AUTO_TRIALS = 6


def test_a_worker_joins_every_familys_study_under_auto(featurized: Path):
    """model: auto is one study per family; a worker runs them in the stage's order, each to tune.n_trials."""
    candidates = {
        "logreg": {"name": "logreg", "params": {"max_iter": 500}, "search_space": {"C": NEGATIVE | {"low": 0.01}}},
        "xgboost": yaml.safe_load((featurized / "params.yaml").read_text())["model"],
    }
    _set(featurized, tune={"n_trials": AUTO_TRIALS})
    params = yaml.safe_load((featurized / "params.yaml").read_text())
    params["model"] = {"name": "auto", "candidates": candidates}
    (featurized / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    storage = params["tune"]["storage"]
    worker = subprocess.Popen(
        [sys.executable, "-m", "tabrepro.cli", "tune-worker", "--worker", "1"],
        cwd=featurized,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # A worker that joins a finished study runs nothing: start the stage once the worker has begun the first
        # family's study, or a stage faster than the worker's start-up would leave it nothing to do.
        _wait_for_a_trial(storage, "telco_churn-logreg", worker)
        run_stage("tune", tune._main, [])
        output, _ = worker.communicate(timeout=300)
    finally:
        worker.kill()
    assert worker.returncode == 0, output
    studies = {s.study_name: s for s in optuna.get_all_study_summaries(storage)}
    assert set(studies) == {"telco_churn-logreg", "telco_churn-xgboost"}
    workers = set()
    for name in studies:
        finished = [t for t in optuna.load_study(study_name=name, storage=storage).trials if t.state.is_finished()]
        assert AUTO_TRIALS <= len(finished) <= AUTO_TRIALS + 1, name
        workers |= {t.user_attrs.get("worker") for t in finished}
    assert 1 in workers and workers <= {0, 1}
    metrics = read_json("reports/tune/metrics.json")
    assert metrics["selection"] == "auto" and set(metrics["families"]) == {"logreg", "xgboost"}


def _wait_for_a_trial(storage: str, study_name: str, worker: subprocess.Popen, timeout_s: float = 120) -> None:
    """Until ``study_name`` holds a trial (of any state), or fail with the worker's output if it exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            pytest.fail(f"the worker exited {worker.returncode} before its first trial:\n{worker.stdout.read()}")
        names = {s.study_name for s in optuna.get_all_study_summaries(storage)}
        if study_name in names and optuna.load_study(study_name=study_name, storage=storage).trials:
            return
        time.sleep(0.2)
    pytest.fail(f"no trial in {study_name} after {timeout_s:.0f} s")


def _heartbeat_study(tmp_path: Path) -> optuna.Study:
    tune = TuneParams(n_trials=1, storage=f"sqlite:///{tmp_path}/hb.db", heartbeat_interval=1, grace_period=2)
    return optuna.create_study(study_name="s", storage=open_storage(tune, ""))


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")  # ask() without optimize
def test_settling_fails_and_requeues_a_trial_whose_heartbeat_stopped(tmp_path: Path):
    study = _heartbeat_study(tmp_path)
    dead = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    study._storage.record_heartbeat(dead._trial_id)  # one beat, then its worker "dies"
    settle_trials(study)
    trials = study.get_trials()
    assert trials[0].state.name == "FAIL"
    assert [(t.state.name, t.params, t.system_attrs["failed_trial"]) for t in trials[1:]] == [
        ("WAITING", trials[0].params, 0)
    ]


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")  # ask() without optimize
def test_settling_gives_up_on_a_trial_without_any_heartbeat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    monkeypatch.setattr(study_storage, "_SLACK_S", 0.0)
    study = _heartbeat_study(tmp_path)
    study.ask()  # no heartbeat: Optuna never fails it
    settle_trials(study)  # returns after the grace period (2 s) instead of waiting forever
    assert [t.state.name for t in study.get_trials()] == ["RUNNING"]
    assert "s: trial 0 has run too long without failing; not waited for" in caplog.text
