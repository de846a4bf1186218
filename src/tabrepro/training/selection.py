"""Which model family to train (``model: auto``): the best by CV, unless a simpler one is as good within noise.

Every family is scored on the SAME folds, so fold k's scores are paired: the difference of two families on one fold
is free of how hard that fold happens to be. The family with the best mean CV score (the task's objective, in its
direction: ROC-AUC up, log-loss or RMSE down) wins, except that a simpler family is preferred when its paired
difference to the best is within one standard error of zero (the SE of the mean of the per-fold differences): a lead
smaller than its own noise is not evidence that the more complex model is better, and the simpler one is cheaper to
serve, to explain and to keep. Every number the rule compares (the means, the differences, their SE) is ``rounded``
to the declared precision first, so last-digit differences between CPUs cannot change the choice.

Simplicity order, ``linear < random_forest < xgboost`` (the linear family is logreg for classification, ridge for
regression): by how many hyper-parameters the search tunes (2, 3 and 7 in
``conf/model/``) and how much the fitted model depends on choices made while fitting. The more dimensions a search
tunes, the more its best CV score is lifted by picking the luckiest trial, so at equal scores the family searched
over fewer dimensions is the more trustworthy. Logistic regression is also linear (coefficients a reader can check,
a graph of a few nodes); a random forest averages independent trees and needs no early stopping; boosting adds
rounds chosen on held-out data and the most knobs.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import optuna

from tabrepro.config.params import ModelParams, TuneParams
from tabrepro.config.precision import DEFAULT_DECIMALS, rounded
from tabrepro.training.objectives import BINARY, Scoring
from tabrepro.training.search import SearchResult, folds_digest, make_folds, run_search

log = logging.getLogger(__name__)

SIMPLEST_FIRST = ("logreg", "random_forest", "xgboost")  # classification; regression's linear family is ridge
_RANK = {"logreg": 0, "ridge": 0, "random_forest": 1, "xgboost": 2}


def simplest_first(task: str) -> tuple[str, ...]:
    """The simplicity order of the families that serve ``task``."""
    return ("ridge", "random_forest", "xgboost") if task == "regression" else SIMPLEST_FIRST


@dataclass(frozen=True)
class Comparison:
    """One family against the best: the mean of the per-fold differences (how much better the best is on each fold:
    best minus this when higher is better, this minus best when lower is) and its SE."""

    family: str
    mean: float
    std: float
    fold_diffs: tuple[float, ...]
    diff: float
    se: float

    @property
    def within_one_se(self) -> bool:
        """Whether the best's lead is no larger than its standard error (always true for the best itself)."""
        return self.diff <= self.se


@dataclass(frozen=True)
class Choice:
    """The family to train, the family with the best mean, every family's comparison, and why."""

    family: str
    best: str
    comparisons: dict[str, Comparison]
    reason: str


def paired_difference(
    best: Sequence[float], other: Sequence[float], *, decimals: int = DEFAULT_DECIMALS, sign: int = 1
) -> tuple[float, float]:
    """Mean and standard error of the fold-by-fold leads ``sign * (best - other)`` (SE 0 with one fold), rounded;
    ``sign`` is -1 for an objective minimised."""
    diffs = sign * (np.asarray(best, dtype=float) - np.asarray(other, dtype=float))
    se = float(diffs.std(ddof=1) / math.sqrt(len(diffs))) if len(diffs) >= 2 else 0.0
    return rounded(diffs.mean(), decimals), rounded(se, decimals)


def choose_family(
    fold_scores: Mapping[str, Sequence[float]],
    *,
    decimals: int = DEFAULT_DECIMALS,
    direction: str = "maximize",
    label: str = "ROC-AUC",
) -> Choice:
    """Apply the rule to each family's per-fold CV score (the same folds, in the same order, for every family),
    each score ``rounded`` to ``decimals`` places first; ``direction`` is the objective's (``label`` names it)."""
    if not fold_scores:
        raise ValueError("no family to choose from")
    lengths = {len(s) for s in fold_scores.values()}
    if len(lengths) != 1 or 0 in lengths:
        raise ValueError(f"every family must be scored on the same folds, got fold counts {sorted(lengths)}")
    unknown = sorted(set(fold_scores) - set(_RANK))
    if unknown:
        raise ValueError(f"unknown family {unknown}; known: {list(_RANK)}")
    sign = 1 if direction == "maximize" else -1
    scores = {f: [rounded(v, decimals) for v in s] for f, s in fold_scores.items()}
    # equal (rounded) means: the simpler family counts as the best
    best = max(scores, key=lambda f: (sign * rounded(np.mean(scores[f]), decimals), -_RANK[f]))
    comparisons = {f: _compare(f, scores[best], scores[f], decimals, sign) for f in _simplest_first(scores)}
    chosen = next(f for f, c in comparisons.items() if c.within_one_se)
    reason = _reason(chosen, best, comparisons, label)
    return Choice(family=chosen, best=best, comparisons=comparisons, reason=reason)


def _simplest_first(families: Mapping[str, object]) -> list[str]:
    return sorted(families, key=_RANK.__getitem__)


def _compare(family: str, best: Sequence[float], scores: Sequence[float], decimals: int, sign: int) -> Comparison:
    diff, se = paired_difference(best, scores, decimals=decimals, sign=sign)
    return Comparison(
        family=family,
        mean=rounded(np.mean(scores), decimals),
        std=rounded(np.std(scores), decimals),
        fold_diffs=tuple(rounded(sign * (b - s), decimals) for b, s in zip(best, scores, strict=True)),
        diff=diff,
        se=se,
    )


def _reason(chosen: str, best: str, comparisons: Mapping[str, Comparison], label: str = "ROC-AUC") -> str:
    """One sentence a reviewer can check against the numbers next to it."""
    if len(comparisons) == 1:
        return f"{chosen}: the only family searched (model pinned with model={chosen})"
    order = " < ".join(_simplest_first(comparisons))
    if chosen != best:
        c = comparisons[chosen]
        return (
            f"{chosen}: within one standard error of the best mean CV {label} ({best}, {comparisons[best].mean:.4f}): "
            f"paired difference {c.diff:+.4f} <= SE {c.se:.4f}, and simpler ({order})"
        )
    simpler = [comparisons[f] for f in _simplest_first(comparisons) if _RANK[f] < _RANK[best]]
    behind = "; ".join(f"{c.family} {c.diff:+.4f} > SE {c.se:.4f}" for c in simpler)
    tail = f"; every simpler family trails by more than one SE ({behind})" if simpler else " and is the simplest"
    return f"{chosen}: the best mean CV {label} ({comparisons[best].mean:.4f}){tail}"


@dataclass(frozen=True)
class FamilySearch:
    """Every family's search on the same folds (``folds`` is their digest), and the choice among them."""

    results: dict[str, SearchResult]
    studies: dict[str, optuna.Study | None]
    choice: Choice
    folds: str
    seconds: float
    scoring: Scoring = BINARY  # the task and the objective every family was scored by

    @property
    def chosen(self) -> SearchResult:
        return self.results[self.choice.family]


def search_families(
    model: ModelParams,
    tune: TuneParams,
    x: np.ndarray,
    y: np.ndarray,
    *,
    storage: optuna.storages.BaseStorage,
    study_names: Mapping[str, str],
    seed: int,
    n_jobs: int,
    worker: int = 0,
    decimals: int = DEFAULT_DECIMALS,
    scoring: Scoring = BINARY,
) -> FamilySearch:
    """Search each of ``model.families`` (one study each, ``tune.n_trials`` trials each, simplest first) on ONE set
    of folds, then choose. A pinned family is a choice of one."""
    started = time.perf_counter()
    folds = make_folds(y, k=tune.cv_folds, seed=seed, task=scoring.task)
    results: dict[str, SearchResult] = {}
    studies: dict[str, optuna.Study | None] = {}
    for family in sorted(model.families, key=lambda f: _RANK[f.name]):
        name = study_names[family.name]
        results[family.name], studies[family.name] = run_search(
            family, tune, x, y, storage=storage, study_name=name, seed=seed, n_jobs=n_jobs, worker=worker, folds=folds,
            decimals=decimals, scoring=scoring,
        )  # fmt: skip
    objective = scoring.objective
    scores = {f: r.fold_scores for f, r in results.items()}
    choice = choose_family(scores, decimals=decimals, direction=objective.direction, label=objective.label)
    log.info("model choice: %s", choice.reason)
    return FamilySearch(results, studies, choice, folds_digest(folds), time.perf_counter() - started, scoring)
