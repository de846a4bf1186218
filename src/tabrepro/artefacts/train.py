"""What ``train`` writes beside the model: ``models/model/meta.json``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, JsonValue, model_validator

from tabrepro.artefacts._base import Record, Sha256, Share
from tabrepro.artefacts.tune import SearchSummary


class TuningProvenance(Record):
    source: Literal["search", "config"]
    cv_roc_auc: Share | None = None  # binary; another task records its objective and score instead
    cv_roc_auc_std: float | None = Field(default=None, ge=0)
    search: SearchSummary
    objective: str | None = None
    cv_score: float | None = None
    cv_score_std: float | None = Field(default=None, ge=0)


class ModelMeta(Record):
    """``models/model/meta.json``: the model file (a bare name in the same folder), its sha256, how it was made."""

    family: str
    file: str = Field(pattern=r"^[^/\\]+$")
    sha256: Sha256
    feature_names: tuple[str, ...] = ()
    best_iteration: int | None = None
    seed: int | None = None
    hyperparameters: dict[str, JsonValue] = Field(default_factory=dict)
    tuning: TuningProvenance | None = None
    engine: Literal["local", "dask"] = "local"  # where it was trained (train.engine); the file is the same kind
    task: Literal["binary", "multiclass", "regression"] = "binary"  # the contract's target.task (issue 21)
    classes: tuple[str, ...] = ()  # classification: the labels in the order of the probability columns

    @model_validator(mode="after")
    def _plain_name(self) -> ModelMeta:
        if self.file in (".", ".."):
            raise ValueError(f"file: {self.file!r} is not a file name")
        return self
