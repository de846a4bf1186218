"""``tabrepro tune-worker``: an extra process of the tune stage's search, on this machine or another one.

A worker joins the stage's studies (one per family: each candidate under ``model: auto``, in the stage's order) in
the database named by ``tune.storage`` and runs trials until each study holds ``tune.n_trials`` finished ones. Its
params are the experiment's: ``conf/`` composed with the overrides the experiment was run with (``dvc exp run -S``
composes the same way; a clone on another machine has only the committed params.yaml), or a params file. Every
message names where the params came from.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tabrepro.errors import ConfigError, TabreproError

log = logging.getLogger(__name__)

DEFAULT_PARAMS = "params.yaml"


def run_tune_worker(*, overrides: Sequence[str], conf: str | Path, params_file: str | None, worker: int) -> int:
    """Read the params (``overrides`` composed over ``conf``, else ``params_file``) and search; exit status 0."""
    if worker < 1:
        raise ConfigError(f"--worker {worker}: expected a whole number >= 1 (0 is the tune stage's own seed)")
    params, source = read_worker_params(overrides=overrides, conf=conf, params_file=params_file)
    with named_as(source):
        _search(params, source=source, worker=worker)
    return 0


def read_worker_params(
    *, overrides: Sequence[str], conf: str | Path, params_file: str | None
) -> tuple[dict[str, Any], str]:
    """The params and how messages name them: ``conf/ with overrides [...]``, or the params file's path."""
    from tabrepro.config.compose import compose_config
    from tabrepro.config.dataset import is_reference, resolve_data
    from tabrepro.config.params import load_params

    if overrides and params_file is not None:
        raise ConfigError(f"--params {params_file} and overrides {list(overrides)}: give one (overrides compose conf/)")
    if overrides:
        params, where = compose_config(conf, overrides), f"{Path(conf)}/ with overrides {list(overrides)}"
        if is_reference(params.get("data")):  # the contract file it names, from the repository that holds conf/
            params["data"] = resolve_data(params["data"], root=Path(conf).resolve().parent, where=f"{where}: data")
        return params, where
    path = params_file or DEFAULT_PARAMS
    return load_params(path), str(path)


@contextmanager
def named_as(source: str) -> Iterator[None]:
    """The search's messages name ``params.yaml``; where the params came from elsewhere, name that instead."""
    try:
        yield
    except TabreproError as exc:
        text = str(exc).replace(f"{DEFAULT_PARAMS}: ", f"{source}: ")
        if text == str(exc):
            raise
        raise ConfigError(text) from None


def _search(params: dict[str, Any], *, source: str, worker: int) -> None:
    import optuna

    from tabrepro.config.params import (
        ModelParams,
        PathsParams,
        ReproducibilityParams,
        TrainParams,
        TuneParams,
        read_section,
        read_seed,
    )
    from tabrepro.contract.spec import load_contract
    from tabrepro.training.tuning import search_tune

    paths, tune = read_section(params, "paths", PathsParams, source=source), read_section(params, "tune", TuneParams)
    model, contract = read_section(params, "model", ModelParams), load_contract(params.get("data"))
    if tune.storage is None or tune.n_trials == 0:
        raise ConfigError(
            f"{source}: tune.storage is null or tune.n_trials is 0: workers share a study only through a database. "
            "On a machine whose params.yaml is the committed one, pass the overrides the experiment was run with: "
            "tabrepro tune-worker --worker N 'tune.storage=\"postgresql+psycopg://...\"' tune.n_trials=..."
        )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    found = search_tune(
        paths,
        contract,
        model,
        tune,
        journal="",  # unused: a worker's studies are in tune.storage's database
        seed=read_seed(params, source=source),
        n_jobs=read_section(params, "train", TrainParams).n_jobs,
        worker=worker,
        decimals=read_section(params, "reproducibility", ReproducibilityParams).decimals,  # as the tune stage rounds
    )
    for family, result in found.results.items():
        label = found.scoring.objective.label
        log.info("worker %d done: %s study best CV %s %.4f", worker, family, label, result.cv_mean)
