"""prepare's pure core: cleaning, stratified splitting, the quality report, and raw-file errors."""

from __future__ import annotations

import pandas as pd
import pytest

from tabrepro.errors import DataError
from tabrepro.io.raw import read_raw
from tabrepro.stages.prepare import clean_table, split_data, summarise_quality


def _frame(n: int = 40) -> pd.DataFrame:
    return pd.DataFrame({"id": [f"c{i}" for i in range(n)], "x": range(n), "y": [i % 4 == 0 for i in range(n)]})


def test_clean_encodes_target_and_drops_unlabelled(tiny_raw, tiny_contract):
    raw = tiny_raw.copy()
    raw.loc[2, "y"] = ""
    dropping = tiny_contract.model_copy(update={"target": tiny_contract.target.model_copy(update={"missing": "drop"})})
    clean, dropped = clean_table(raw, dropping, source="raw.csv")
    assert dropped == {"target missing": 1}
    assert clean["y"].tolist() == [1, 0, 1, 0, 1]
    assert list(clean.columns) == tiny_contract.columns
    assert tiny_raw.loc[2, "y"] == "no"  # the input frame is not mutated


def test_single_class_target_is_refused(tiny_raw, tiny_contract):
    with pytest.raises(DataError, match="single class"):
        clean_table(tiny_raw.assign(y="no"), tiny_contract, source="raw.csv")


def test_split_sizes_stratification_and_disjointness():
    df = _frame(400).assign(y=lambda d: d["y"].astype(int))
    parts = split_data(df, target="y", train=0.6, val=0.2, test=0.2, seed=3)
    assert [len(parts[s]) for s in ("train", "val", "test")] == [240, 80, 80]
    assert all(abs(p["y"].mean() - 0.25) < 0.02 for p in parts.values())
    ids = [set(p["id"]) for p in parts.values()]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert set().union(*ids) == set(df["id"])


def test_split_is_deterministic_and_seed_dependent():
    df = _frame(200).assign(y=lambda d: d["y"].astype(int))
    a = split_data(df, target="y", train=0.7, val=0.15, test=0.15, seed=1)
    b = split_data(df, target="y", train=0.7, val=0.15, test=0.15, seed=1)
    c = split_data(df, target="y", train=0.7, val=0.15, test=0.15, seed=2)
    assert a["test"].equals(b["test"])
    assert not a["test"]["id"].equals(c["test"]["id"])


def test_split_too_small_is_a_clear_error():
    df = _frame(5).assign(y=[1, 0, 0, 0, 0])
    with pytest.raises(DataError, match="cannot split 5 rows"):
        split_data(df, target="y", train=0.6, val=0.2, test=0.2, seed=0)


def test_quality_report(tiny_raw, tiny_contract):
    clean, dropped = clean_table(tiny_raw.assign(extra="z"), tiny_contract, source="raw.csv")
    splits = {"train": clean.iloc[:4], "val": clean.iloc[4:5], "test": clean.iloc[5:]}
    report = summarise_quality(tiny_raw.assign(extra="z"), clean, splits, contract=tiny_contract, dropped=dropped)
    assert report["rows"] == {"in": 6, "out": 6, "dropped": {"target missing": 0}}
    assert report["ignored_columns"] == ["extra"]
    assert report["missing_values"]["spend"] == 1
    assert report["class_balance"]["train"] == {"rows": 4, "positive": 2, "positive_rate": 0.5}


def test_read_raw_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_raw(tmp_path / "nope.csv", fmt="csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty"):
        read_raw(tmp_path / "empty.csv", fmt="csv")
    (tmp_path / "latin.csv").write_bytes("id,name\n1,caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin\.csv: not valid UTF-8 at line 2 \(byte offset 13\)"):
        read_raw(tmp_path / "latin.csv", fmt="csv")


def test_read_raw_keeps_text_and_numbers_rows_by_line(tmp_path):
    (tmp_path / "raw.csv").write_text("id,x\n007, \n008,1\n")
    raw = read_raw(tmp_path / "raw.csv", fmt="csv")
    assert raw["id"].tolist() == ["007", "008"]  # no numeric guessing: leading zeros kept
    assert raw["x"].tolist() == [" ", "1"]
    assert raw.index.tolist() == [2, 3]
