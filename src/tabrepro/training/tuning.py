"""The tune search, wired once: the tune stage (``stages/tune.py``) and every ``tabrepro tune-worker`` call
``search_tune``, so a worker runs exactly the stage's search (same studies, folds, seed and rounding)."""

from __future__ import annotations

from tabrepro.config.params import ModelParams, PathsParams, TuneParams
from tabrepro.config.precision import DEFAULT_DECIMALS
from tabrepro.contract.spec import DataContract
from tabrepro.training.objectives import Scoring, scoring_for
from tabrepro.training.search import check_search, read_search_data, study_names_for
from tabrepro.training.selection import FamilySearch, search_families
from tabrepro.training.study_storage import open_storage


def search_tune(
    paths: PathsParams,
    contract: DataContract,
    model: ModelParams,
    tune: TuneParams,
    *,
    journal: str,
    seed: int,
    n_jobs: int,
    worker: int = 0,
    decimals: int = DEFAULT_DECIMALS,
) -> FamilySearch:
    """Check the search space, read the train features, open the studies (one per family, named by
    ``study_names_for``) in ``tune.storage``'s database, else in the journal file ``journal``, and search them.
    ``worker`` 0 is the stage; a worker N >= 1 offsets the sampler's seed. Only the families that serve the
    contract's task are searched, by the task's objective (``tune.objective``)."""
    model = model.for_task(contract.target.task)
    check_search(model, tune)
    x, y = read_search_data(paths.features, contract)
    return search_families(
        model,
        tune,
        x,
        y,
        storage=open_storage(tune, journal),
        study_names=study_names_for(contract, model, tune),
        seed=seed,
        n_jobs=n_jobs,
        worker=worker,
        decimals=decimals,
        scoring=task_scoring(contract, tune),
    )


def task_scoring(contract: DataContract, tune: TuneParams) -> Scoring:
    """The contract's task, its objective (``tune.objective.<task>``) and its number of classes."""
    task = contract.target.task
    return scoring_for(task, tune.objective_for(task), n_classes=max(len(contract.target.labels), 2))
