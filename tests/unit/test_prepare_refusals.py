"""prepare refuses small and odd tables clearly, before it writes anything: a class too small for the split and
the CV, and rows without a label (unless the contract says to drop them, which is logged and counted)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from tabrepro.config.params import PathsParams, SplitParams
from tabrepro.contract.spec import load_contract
from tabrepro.errors import ConfigError, DataError
from tabrepro.stages import prepare
from tabrepro.stages.prepare import clean_table, min_class_rows, split_data
from tests.conftest import TINY_CONTRACT

SPLIT = SplitParams(train=0.7, val=0.15, test=0.15, seed=0)


def _raw(labels: list[str]) -> pd.DataFrame:
    """Tiny-contract rows, all text, indexed as the raw reader numbers CSV lines (the header is line 1)."""
    n = len(labels)
    frame = pd.DataFrame(
        {
            "id": [f"c{i}" for i in range(n)],
            "age": [str(20 + i % 50) for i in range(n)],
            "spend": [str(i) for i in range(n)],
            "plan": ["basic" if i % 3 else "pro" for i in range(n)],
            "active": ["Yes" if i % 2 else "No" for i in range(n)],
            "y": labels,
        },
        dtype="str",
    )
    return frame.set_axis(pd.RangeIndex(2, n + 2))


def _run_prepare(work: Path, params: dict, labels: list[str], **target) -> PathsParams:
    """prepare.run on a CSV of ``labels`` in ``work``; returns the paths it would write."""
    _raw(labels).to_csv(work / "raw.csv", index=False)
    contract = load_contract({**TINY_CONTRACT, "target": {**TINY_CONTRACT["target"], **target}})
    paths = PathsParams.model_validate(params["paths"])
    prepare.run(paths, contract, SPLIT, cv_folds=5)
    return paths


def test_the_class_minimum_follows_the_split_and_the_cv_folds():
    assert min_class_rows(SPLIT, cv_folds=5) == 14  # (5 + 1) / 0.7 -> 9; 2 / 0.15 -> 14
    assert min_class_rows(SPLIT, cv_folds=10) == 16
    assert min_class_rows(SplitParams(train=0.6, val=0.2, test=0.2, seed=0), cv_folds=3) == 10


@pytest.mark.parametrize(
    ("train", "val", "test", "folds"), [(0.7, 0.15, 0.15, 5), (0.6, 0.2, 0.2, 10), (0.8, 0.1, 0.1, 3)]
)
def test_a_class_at_the_minimum_reaches_every_split_and_every_fold(train, val, test, folds):
    split = SplitParams(train=train, val=val, test=test, seed=0)
    needed = min_class_rows(split, cv_folds=folds)
    for majority in (needed, needed + 1, 97, 1003):
        df = pd.DataFrame({"id": range(needed + majority), "y": [1] * needed + [0] * majority})
        for seed in range(3):
            parts = split_data(df, target="y", train=train, val=val, test=test, seed=seed)
            assert (parts["train"]["y"] == 1).sum() >= folds
            assert (parts["val"]["y"] == 1).sum() >= 1 and (parts["test"]["y"] == 1).sum() >= 1


def test_prepare_refuses_a_40_row_table_naming_the_class_counts(tmp_path, monkeypatch, params):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as refused:
        _run_prepare(tmp_path, params, ["yes"] * 4 + ["no"] * 36)
    message = str(refused.value)
    assert message.startswith("raw.csv: class 'yes' has 4 rows (of 40 labelled rows: 'yes' 4, 'no' 36)")
    assert message.endswith("the 0.7/0.15/0.15 split and the 5-fold CV need at least 14 rows of each class")
    assert "class 'no'" not in message  # 36 is enough; only the short class is blamed
    assert list(tmp_path.iterdir()) == [tmp_path / "raw.csv"]  # nothing written


def test_prepare_names_both_classes_when_both_are_short(tmp_path, monkeypatch, params):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match=r"class 'yes' has 12 rows; class 'no' has 13 rows \(of 25 labelled rows"):
        _run_prepare(tmp_path, params, ["yes"] * 12 + ["no"] * 13)


def test_missing_labels_are_refused_by_default_naming_their_lines(tiny_contract):
    raw = _raw(["yes", "", "no", "yes", "", "no"])
    assert tiny_contract.target.missing == "refuse"
    with pytest.raises(DataError) as refused:
        clean_table(raw, tiny_contract, source="raw.csv", row_label="line")
    assert str(refused.value) == (
        "raw.csv: target 'y' is missing on 2 lines (3, 6); label them, or set data.target.missing: drop to drop "
        "such rows"
    )


def test_missing_labels_beyond_ten_are_counted_not_all_listed(tiny_contract):
    raw = _raw(["yes", "no"] + [""] * 12)
    with pytest.raises(DataError, match=r"missing on 12 lines \(4, 5, 6, 7, 8, 9, 10, 11, 12, 13 and 2 more\)"):
        clean_table(raw, tiny_contract, source="raw.csv", row_label="line")


def test_missing_labels_dropped_when_the_contract_says_so_are_logged_and_counted(tmp_path, monkeypatch, params, caplog):
    monkeypatch.chdir(tmp_path)
    labels = ["yes"] * 20 + ["no"] * 30
    labels[4] = labels[21] = labels[33] = ""
    with caplog.at_level(logging.WARNING, logger="tabrepro.stages.prepare"):
        paths = _run_prepare(tmp_path, params, labels, missing="drop")
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.getMessage() == "raw.csv: dropped 3 lines (6, 23, 35) with no 'y' label (data.target.missing: drop)"
    quality = json.loads(Path(paths.data_quality).read_text(encoding="utf-8"))
    assert quality["rows"] == {"in": 50, "out": 47, "dropped": {"target missing": 3}}
    assert sum(part["rows"] for part in quality["class_balance"].values()) == 47


def test_an_unknown_missing_label_setting_is_a_config_error_naming_it():
    with pytest.raises(ConfigError, match=r"data\.target\.missing: Input should be 'refuse' or 'drop'"):
        load_contract({**TINY_CONTRACT, "target": {**TINY_CONTRACT["target"], "missing": "skip"}})
