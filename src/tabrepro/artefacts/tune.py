"""What ``tune`` writes: ``models/best_params.json``, ``reports/tune/metrics.json`` and ``reports/tune/choice.json``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, JsonValue, model_validator

from tabrepro.artefacts._base import Count, Record, Sha256, Share, YesNo

Direction = Literal["maximize", "minimize"]


class _Scored(Record):
    """A binary task's file carries ROC-AUC keys (as before issue 21); another task's carries ``objective``,
    ``direction`` and score keys instead (the tune stage writes only the keys it sets)."""

    objective: str | None = None  # tune.objective.<task>: roc_auc (binary), log_loss, roc_auc_ovr_macro, rmse, mae
    direction: Direction | None = None

    def _one_kind(self, roc_auc: object, score: object) -> None:
        if (roc_auc is None) == (score is None):
            raise ValueError("exactly one of the ROC-AUC keys (binary) and the score keys (other tasks) is set")


class SearchSummary(Record):
    trials_requested: Count
    trials_completed: Count
    trials_pruned: Count
    cv_folds: int = Field(ge=2)


class BestParams(_Scored):
    """``models/best_params.json``: the hyper-parameters ``train`` fits with, and where they came from."""

    model: str
    source: Literal["search", "config"]
    params: dict[str, JsonValue]
    cv_roc_auc: Share | None = None
    cv_roc_auc_std: float | None = Field(default=None, ge=0)
    cv_score: float | None = None  # the objective's CV mean (tasks other than binary)
    cv_score_std: float | None = Field(default=None, ge=0)
    cv_best_rounds: int | None
    search: SearchSummary

    @model_validator(mode="after")
    def _scored(self) -> BestParams:
        self._one_kind(self.cv_roc_auc, self.cv_score)
        return self


class FamilyCV(Record):
    """One family's best trial, scored on the folds every family shares, against the family with the best mean."""

    cv_roc_auc_mean: Share | None = None  # the mean of the per-fold scores below (``choice.json`` lists them)
    cv_roc_auc_std: float | None = Field(default=None, ge=0)
    cv_score_mean: float | None = None  # the same, by the objective of a task other than binary
    cv_score_std: float | None = Field(default=None, ge=0)
    diff_to_best: float  # the mean over folds of (best family's score - this one's); 0 for the best
    diff_se: float = Field(ge=0)  # standard error of that mean
    within_one_se: YesNo
    n_trials_complete: Count
    n_trials_pruned: Count


class TuneMetrics(_Scored):
    """``reports/tune/metrics.json`` (a DVC metrics file): the chosen family's search (its best CV score and its
    size), how it was chosen, and every family searched (one under a pinned ``model``, each candidate under auto).
    Numbers in nested mappings only; the per-fold lists are in ``choice.json`` (``TuneChoice``)."""

    model: str
    best_cv_roc_auc: Share | None = None
    best_cv_roc_auc_std: float | None = Field(default=None, ge=0)
    best_cv_score: float | None = None  # tasks other than binary: the objective's CV mean
    best_cv_score_std: float | None = Field(default=None, ge=0)
    cv_folds: int = Field(ge=2)
    n_trials_requested: Count  # per family; a tune.timeout that stops the search first fails the stage
    n_trials_complete: Count
    n_trials_pruned: Count
    timeout_s: float | None  # the search's wall time is in the run record (reports/runs/tune.json), not here
    selection: Literal["auto", "pinned"]
    best_family: str  # the best mean CV ROC-AUC; ``model`` differs when a simpler family is within one SE of it
    families: dict[str, FamilyCV]

    @model_validator(mode="after")
    def _scored(self) -> TuneMetrics:
        self._one_kind(self.best_cv_roc_auc, self.best_cv_score)
        return self


class FamilyFolds(Record):
    params: dict[str, JsonValue]
    best_rounds: int | None
    fold_scores: tuple[float, ...]  # ROC-AUC (binary) or the task's objective
    fold_diffs_to_best: tuple[float, ...]
    diff_to_best: float
    diff_se: float = Field(ge=0)
    within_one_se: YesNo


class TuneChoice(_Scored):
    """``reports/tune/choice.json``: the family chosen, the rule and its reason, and each family's per-fold scores
    on the shared folds (``folds_sha256`` digests their held-out row indices)."""

    model: str
    best_family: str
    reason: str
    rule: str
    simplicity_order: tuple[str, ...]
    cv_folds: int = Field(ge=2)
    folds_sha256: Sha256
    families: dict[str, FamilyFolds]
