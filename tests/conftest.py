"""Shared fixtures: the repository, the default contract, and a tiny inline data set with its contract."""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tabrepro.config.params import (
    EvaluateParams,
    FeaturesParams,
    ModelParams,
    PackageParams,
    PathsParams,
    SplitParams,
    TrainParams,
    TuneParams,
    load_params,
)
from tabrepro.contract.policy import GatePolicy, Policy
from tabrepro.contract.spec import DataContract, load_contract
from tests.support.marks import apply_marks

REPO = Path(__file__).resolve().parents[1]
_TRACKED = pytest.StashKey[str]()

# Nothing phones home from the tests either.
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")  # as the Makefile and the bento: no per-request tracing state
os.environ.setdefault("BENTOML_HOME", str(REPO / ".bentoml"))

TINY_CONTRACT = {
    "name": "tiny",
    "source": "raw.csv",
    "id_column": "id",
    "target": {"column": "y", "positive": "yes", "negative": "no"},
    "features": {
        "age": {"type": "numeric", "min": 0, "max": 120, "integer": True},
        "spend": {"type": "numeric", "min": 0, "nullable": True},
        "plan": {"type": "categorical", "values": ["basic", "pro"]},
        "active": {"type": "boolean"},
    },
}


# Every criterion of the promotion gate switched off (``beat_majority`` is a switch, the others limits).
GATE_OFF = {name: (False if name in ("beat_majority", "beat_constant") else None) for name in GatePolicy.model_fields}


def paths_under(root: Path) -> PathsParams:
    """Every path of ``paths`` under ``root``: a stage run by a test writes nothing into the repository (the bento
    receipt and the run records included)."""
    return PathsParams(**{key: str(root / key) for key in PathsParams.model_fields})


def write_splits(paths: PathsParams, prepared: pd.DataFrame, features: pd.DataFrame, cuts: dict[str, slice]) -> None:
    """``prepared`` and ``features`` cut into the splits ``cuts`` names, as prepare and featurize write them."""
    for folder, frame in ((paths.prepared, prepared), (paths.features, features)):
        Path(folder).mkdir(parents=True)
        for split, rows in cuts.items():
            frame.iloc[rows].to_parquet(Path(folder) / f"{split}.parquet", index=False)


def gate_only(policy: dict | None = None, **limits: float) -> Policy:
    """The policy section ``policy`` (params ``policy``) whose gate checks ``limits`` only (every other criterion
    off): the data set's bars are set for the full table, and a small sample meets the ones a test picks."""
    policy = policy or {}
    return Policy.model_validate({**policy, "gate": {**GATE_OFF, **limits}})


def write_sample(dest: Path, params: dict, *, rows: int, seed: int, drop_columns: tuple[str, ...] = ()) -> dict:
    """Write ``rows`` raw rows of the default data set to ``dest/raw/telco.csv`` (as text, as exported; without
    ``drop_columns``) and return a copy of ``params`` whose contract reads it (relative to ``dest``)."""
    raw = pd.read_csv(REPO / params["data"]["source"], dtype="str", keep_default_na=False)
    (dest / "raw").mkdir(parents=True, exist_ok=True)
    sample = raw.sample(rows, random_state=seed).drop(columns=list(drop_columns))
    sample.to_csv(dest / "raw" / "telco.csv", index=False)
    return sample_params(params)


def sample_params(params: dict) -> dict:
    """``params`` whose contract reads the sample that ``write_sample`` wrote (``raw/telco.csv``, relative)."""
    return {**params, "data": {**params["data"], "source": "raw/telco.csv"}}


def package_sample(
    work: Path,
    params: dict,
    *,
    rows: int = 1500,
    seed: int = 2,
    model: ModelParams | dict | None = None,
    tune: TuneParams | None = None,
    train: TrainParams | None = None,
    tune_train: TrainParams | None = None,
    train_seed: int = 0,
    evaluate: dict | None = None,
    gate: dict | None = None,
    package: PackageParams | None = None,
    build_bento: bool = False,
    drop_columns: tuple[str, ...] = (),
    until: str = "package",
) -> Path:
    """Run prepare -> package on ``rows`` raw rows (sample ``seed``) in ``work``; return ``work``. The one stage
    chain of the suite: ``sample_pipelines`` shares its runs, a test that changes one takes a copy.

    By default: no tuning search, the model section of ``params`` (xgboost when it is ``auto``), default training
    (``tune_train``: the training settings the tune stage gets, ``train``'s by default) with ``train_seed``, and
    the data set's promotion gate reduced to ``gate`` (default ``min_roc_auc`` 0.7: its limits are set for the full
    data). ``evaluate`` overrides keys of the evaluate section; ``drop_columns`` are left out of the raw sample;
    ``until="featurize"`` stops after featurize.
    """
    from tabrepro.artefacts import ServeParams
    from tabrepro.stages import evaluate as evaluate_stage
    from tabrepro.stages import featurize, prepare
    from tabrepro.stages import package as package_stage
    from tabrepro.stages import train as train_stage
    from tabrepro.stages import tune as tune_stage

    params = write_sample(work, params, rows=rows, seed=seed, drop_columns=drop_columns)
    model_params = ModelParams.model_validate(model or params["model"])
    if model_params.name == "auto":  # the default: the fixtures were written for the tree model, pinned here
        model_params = model_params.family("xgboost")
    train = train or TrainParams()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        paths, contract = PathsParams.model_validate(params["paths"]), load_contract(params["data"])
        prepare.run(paths, contract, SplitParams.model_validate(params["split"]))
        featurize.run(paths, contract, FeaturesParams.model_validate(params["features"]))
        if until == "featurize":
            return work
        search = tune or TuneParams(n_trials=0, cv_folds=3)
        tune_stage.run(paths, contract, model_params, search, tune_train or train, seed=train_seed)
        train_stage.run(paths, contract, model_params, train, seed=train_seed)
        policy = gate_only(params.get("policy"), **(gate or {"min_roc_auc": 0.7}))
        section = EvaluateParams.model_validate({**params["evaluate"], **(evaluate or {})})
        evaluate_stage.run(paths, contract, section, policy)
        package_stage.run(paths, contract, package or PackageParams(build_bento=build_bento), ServeParams())
    return work


class SamplePipelines:
    """The sample pipeline runs of a session, each made once per set of options, also under pytest-xdist: the
    workers share a folder per run (the first to need it makes it, under a file lock; the others wait and read).
    Read them, never change them: ``copy`` gives a private copy to a test that does."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        base = factory.getbasetemp()
        # under xdist each worker's temp root is a folder of the session's: share that one, not pytest's own root
        self._root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "sample-pipelines"
        self._root.mkdir(exist_ok=True)

    def __call__(self, **options: Any) -> Path:
        """The folder of the run with these options (``package_sample``'s), made on first use."""
        key = json.dumps(options, sort_keys=True, default=lambda v: v.model_dump(mode="json"))
        folder = self._root / hashlib.sha256(key.encode()).hexdigest()[:16]
        made = folder.with_suffix(".made")  # beside the run, not in it: the run folder holds what a run writes
        with open(folder.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            if not made.is_file():
                shutil.rmtree(folder, ignore_errors=True)  # what a failed attempt left
                folder.mkdir()
                package_sample(folder, load_params(REPO / "params.yaml"), **options)
                made.write_text(key)
        return folder

    def copy(self, dest: Path, **options: Any) -> Path:
        """A private copy at ``dest`` (which may exist) of the run with these options."""
        return Path(shutil.copytree(self(**options), dest, symlinks=True, dirs_exist_ok=True))


@pytest.fixture(scope="session")
def sample_pipelines(tmp_path_factory: pytest.TempPathFactory) -> SamplePipelines:
    """Runs of prepare -> package on raw samples, shared by the session (``SamplePipelines``)."""
    return SamplePipelines(tmp_path_factory)


@pytest.fixture(scope="session")
def packaged(sample_pipelines: SamplePipelines) -> Path:
    """A 1,500-row pipeline run through package (no bento) in a temporary folder: ``models/serving`` and
    ``models/reference_stats.json`` in it are what a real run would write. Shared, so treat it as read-only."""
    return sample_pipelines()


def _tracked_changes() -> str:
    """``git status`` of the repository's tracked files (empty outside a git work tree)."""
    done = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True, text=True
    )
    return done.stdout if done.returncode == 0 else ""


def pytest_sessionstart(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):  # the controller (or a run without xdist), once
        session.config.stash[_TRACKED] = _tracked_changes()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A test that writes into the repository's tracked files (a stage run with a default relative path) fails the
    run: it would change what the next commit or `dvc status` sees."""
    before = session.config.stash.get(_TRACKED, None)
    after = _tracked_changes() if before is not None else None
    if before is not None and after != before:
        changed = sorted(set(after.splitlines()) - set(before.splitlines()))
        session.config.get_terminal_writer().line(f"the tests changed tracked files of {REPO}: {changed}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Markers by layer, by what a test needs and by cost (tests/support/marks.py)."""
    apply_marks(items, REPO)


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def params() -> dict:
    return load_params(REPO / "params.yaml")


@pytest.fixture
def telco_contract(params: dict) -> DataContract:
    return load_contract(params["data"])


@pytest.fixture
def tiny_contract() -> DataContract:
    return load_contract(TINY_CONTRACT)


@pytest.fixture
def tiny_raw() -> pd.DataFrame:
    """Six raw rows, all text, as `read_raw` returns them."""
    return pd.DataFrame(
        {
            "id": ["a1", "a2", "a3", "a4", "a5", "a6"],
            "age": ["30", "41", "25", "67", "52", "38"],
            "spend": ["10.5", " ", "3", "99.9", "0", "12"],
            "plan": ["basic", "pro", "basic", "pro", "basic", "pro"],
            "active": ["Yes", "No", "Yes", "Yes", "No", "No"],
            "y": ["yes", "no", "no", "yes", "no", "yes"],
        },
        dtype="str",
    )


@pytest.fixture(autouse=True)
def _restore_root_logging():
    """Stage entry points configure logging (basicConfig(force=True)); undo it so no handler outlives its test."""
    root = logging.getLogger()
    before = list(root.handlers)
    yield
    for handler in root.handlers[:]:
        if handler not in before:
            root.removeHandler(handler)
    for handler in before:
        if handler not in root.handlers:
            root.addHandler(handler)
