"""The ``outcomes`` params section: windows, the label deadline, the concept-drift tolerance and the A/B plan."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class OutcomesParams(BaseModel):
    """How ``tabrepro outcomes`` windows, judges and decides (``conf/outcomes/default.yaml``).

    ``window_days``: predictions are grouped by the window their time stamp falls in (aligned to 1970-01-01 UTC).
    ``label_deadline_days``: a label observed later than its window's end plus this is late (counted, not scored),
    so a window's figures do not move once its deadline has passed.
    ``metric``: the metric that concept drift and the A/B test judge; ``tolerance``: how far below the test-split
    estimate it may fall before retraining; ``alpha``: 1 - the level of every CI and the A/B test's two-sided
    size; ``min_effect`` and ``power``: the A/B test's planned sample size.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    window_days: float = Field(default=7, gt=0, allow_inf_nan=False)
    label_deadline_days: float = Field(default=30, ge=0, allow_inf_nan=False)
    metric: Literal["roc_auc"] = "roc_auc"
    tolerance: float = Field(default=0.03, gt=0, lt=1)
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    power: float = Field(default=0.8, gt=0.5, lt=1)
    min_effect: float = Field(default=0.02, gt=0, lt=1)
    bootstrap: int = Field(default=200, ge=10)
    seed: int = Field(default=0, ge=0)
    ece_bins: int = Field(default=10, ge=2)
