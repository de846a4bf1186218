"""Metrics per segment, and the largest gap between segments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabrepro.errors import ConfigError
from tabrepro.evaluation.segments import segment_metrics

FRAME = pd.DataFrame({"plan": ["a"] * 6 + ["b"] * 6 + ["c"] * 2, "senior": [0.0, 1.0] * 7})
Y = np.array([0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 1])
# plan a is ranked perfectly, plan b backwards
P = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9, 0.9, 0.8, 0.7, 0.3, 0.2, 0.1, 0.5, 0.5])


def test_metrics_per_level_and_the_gap():
    seg = segment_metrics(FRAME, Y, P, columns=["plan"], threshold=0.5, min_rows=4)["plan"]
    assert seg["levels"]["a"]["roc_auc"] == 1.0 and seg["levels"]["b"]["roc_auc"] == 0.0
    assert seg["levels"]["a"]["recall"] == 1.0 and seg["levels"]["b"]["recall"] == 0.0
    assert seg["roc_auc_gap"] == 1.0
    assert seg["levels"]["a"]["n"] == 6 and seg["levels"]["a"]["positive_rate"] == 0.5


def test_a_level_below_min_rows_reports_size_only_and_stays_out_of_gaps():
    seg = segment_metrics(FRAME, Y, P, columns=["plan"], threshold=0.5, min_rows=4)["plan"]
    assert seg["levels"]["c"] == {"n": 2, "positive_rate": 0.5, "mean_score": 0.5}


def test_float_flags_read_as_integers_and_missing_is_a_level():
    frame = FRAME.assign(senior=[0.0, 1.0] * 6 + [np.nan, np.nan])
    levels = segment_metrics(frame, Y, P, columns=["senior"], threshold=0.5, min_rows=2)["senior"]["levels"]
    assert set(levels) == {"0", "1", "(missing)"}


def test_no_gap_without_two_rankable_levels():
    seg = segment_metrics(FRAME, Y, P, columns=["plan"], threshold=0.5, min_rows=7)["plan"]
    assert seg["roc_auc_gap"] is None


def test_unknown_segment_column_is_named():
    with pytest.raises(ConfigError, match=r"segments: unknown column\(s\) \['Contrakt'\]"):
        segment_metrics(FRAME, Y, P, columns=["Contrakt"], threshold=0.5)
