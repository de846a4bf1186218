"""Batch scoring of raw files with the packaged model: parity with evaluate, rejects, and no half-written output."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabrepro.batch.scoring import feeds_from_frame, score_file
from tabrepro.contract.records import build_record_model
from tabrepro.contract.rows import check_rows
from tabrepro.contract.spec import load_contract
from tabrepro.errors import DataError
from tabrepro.serving.runtime import feeds_from_records, validate_records
from tests.conftest import TINY_CONTRACT

PREVIOUS = b"customerID,probability,label,model_version\nold,0.5,1,v0\n"


@pytest.fixture(scope="module")
def test_rows(packaged: Path) -> pd.DataFrame:
    """The raw rows (all text) of the packaged sample's test split, in the order of evaluate's predictions."""
    raw = pd.read_csv(packaged / "raw" / "telco.csv", dtype="str", keep_default_na=False)
    predictions = pd.read_parquet(packaged / "reports" / "predictions_test.parquet")
    return raw.set_index("customerID").loc[predictions["customerID"]].reset_index()


@pytest.fixture(scope="module")
def evaluated(packaged: Path) -> pd.DataFrame:
    return pd.read_parquet(packaged / "reports" / "predictions_test.parquet")


def _score(packaged: Path, source: Path, output: Path, **kwargs):
    return score_file(source, output, serving_dir=packaged / "models" / "serving", progress=False, **kwargs)


def _read(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype={"customerID": "str", "id": "str"}, keep_default_na=False)


@pytest.mark.parametrize("as_text", [False, True])
def test_feeds_from_frame_are_the_service_feeds(tiny_raw, as_text):
    """Same arrays as the service builds from records: float32 NaN for missing numbers, "" for missing text."""
    raw = tiny_raw.assign(plan=["basic", "pro", " ", "pro", "basic", "pro"])
    plan = {**TINY_CONTRACT["features"]["plan"], "nullable": True}
    contract = load_contract({**TINY_CONTRACT, "features": {**TINY_CONTRACT["features"], "plan": plan}})
    valid = check_rows(raw, contract).valid
    if as_text:  # a frame with plain text columns (not Categorical) gives the same feeds
        valid = valid.assign(plan=valid["plan"].astype("str"))
    records, errors = validate_records(raw.drop(columns="y").to_dict("records"), build_record_model(contract))
    assert errors == []
    expected, got = feeds_from_records(records, contract), feeds_from_frame(valid, contract)
    assert got.keys() == expected.keys()
    for name, array in expected.items():
        assert got[name].dtype == array.dtype and got[name].shape == array.shape == (6, 1)
        np.testing.assert_array_equal(got[name], array)
    assert got["plan"][2, 0] == "" and np.isnan(got["spend"][1, 0])


@pytest.mark.parametrize("fmt", ["csv", "csv-crlf", "parquet"])
def test_scores_equal_evaluate(packaged, test_rows, evaluated, tmp_path, fmt):
    source = tmp_path / f"in.{fmt.removesuffix('-crlf')}"
    if fmt == "parquet":
        test_rows.to_parquet(source, index=False)
    else:
        test_rows.to_csv(source, index=False, lineterminator="\r\n" if fmt == "csv-crlf" else "\n")
    summary = _score(packaged, source, tmp_path / "out.parquet", chunk_rows=64)
    out = _read(tmp_path / "out.parquet")
    assert out["customerID"].tolist() == evaluated["customerID"].tolist()
    np.testing.assert_allclose(out["probability"], evaluated["probability"], atol=1e-6, rtol=0)
    assert out["label"].tolist() == evaluated["label"].tolist()
    manifest = json.loads((packaged / "models" / "serving" / "manifest.json").read_text())
    assert set(out["model_version"]) == {manifest["version"]} == {summary.model_version}
    assert (summary.rows_read, summary.rows_scored, summary.rows_rejected) == (len(test_rows), len(test_rows), 0)
    assert _read(tmp_path / "out.rejects.csv").empty


def test_parquet_numbers_are_read_as_their_text(packaged, test_rows, tmp_path):
    """A Parquet export with real numeric types (tenure 1.0, SeniorCitizen 0/1 integers) scores like its CSV."""
    typed = test_rows.assign(
        tenure=test_rows["tenure"].astype(float), SeniorCitizen=test_rows["SeniorCitizen"].astype(int)
    )
    typed.to_parquet(tmp_path / "typed.parquet", index=False)
    test_rows.to_csv(tmp_path / "text.csv", index=False)
    _score(packaged, tmp_path / "typed.parquet", tmp_path / "a.csv")
    _score(packaged, tmp_path / "text.csv", tmp_path / "b.csv")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_broken_rows_go_to_rejects_and_the_rest_is_scored(packaged, test_rows, evaluated, tmp_path):
    broken = test_rows.copy()
    broken.loc[3, "tenure"] = "five"
    broken.loc[10, "Contract"] = "Three year"
    broken.loc[11, "MonthlyCharges"] = " "
    broken.to_csv(tmp_path / "in.csv", index=False)
    summary = _score(packaged, tmp_path / "in.csv", tmp_path / "out.csv", rejects_path=tmp_path / "bad.csv")
    rejects = _read(tmp_path / "bad.csv")
    ids = broken["customerID"]
    assert rejects.to_dict("records") == [
        {"line": 5, "id": ids[3], "reason": "tenure: expected a number, got 'five'"},
        {
            "line": 12,
            "id": ids[10],
            "reason": "Contract: expected one of ['Month-to-month', 'One year', 'Two year'], got 'Three year'",
        },
        {
            "line": 13,
            "id": ids[11],
            "reason": "MonthlyCharges: missing value in a column that may not be missing, got ' '",
        },
    ]
    out = _read(tmp_path / "out.csv")
    kept = ~evaluated["customerID"].isin(ids[[3, 10, 11]])
    assert out["customerID"].tolist() == evaluated.loc[kept, "customerID"].tolist()
    np.testing.assert_allclose(out["probability"], evaluated.loc[kept, "probability"], atol=1e-6, rtol=0)
    assert (summary.rows_read, summary.rows_scored, summary.rows_rejected) == (len(broken), len(broken) - 3, 3)
    assert summary.rejects_by_column == {"tenure": 1, "Contract": 1, "MonthlyCharges": 1}


@pytest.mark.parametrize(("fmt", "label", "first"), [("csv", "line", 2), ("parquet", "row", 1)])
def test_repeated_and_missing_ids_are_refused_as_prepare_refuses_them(packaged, test_rows, tmp_path, fmt, label, first):
    """A repeat is refused naming the row that had the id first, across chunks too; rows are numbered as prepare
    numbers them (CSV lines from 2, Parquet rows from 1)."""
    rows = test_rows.copy()
    ids = rows["customerID"]
    rows.loc[9, "customerID"] = f" {ids[2]} "  # the same id once stripped, in the next chunk
    rows.loc[5, "customerID"] = ids[4]  # within one chunk
    rows.loc[7, "customerID"] = ""
    source = tmp_path / f"in.{fmt}"
    if fmt == "parquet":
        rows.to_parquet(source, index=False)
    else:
        rows.to_csv(source, index=False)
    summary = _score(packaged, source, tmp_path / "out.csv", chunk_rows=8)
    rejects = _read(tmp_path / "out.rejects.csv").fillna({"id": ""})
    repeat = "customerID: duplicate values in a column that must be unique, got {!r} (first at {} {})"
    assert rejects.to_dict("records") == [
        {label: 5 + first, "id": ids[4], "reason": repeat.format(ids[4], label, 4 + first)},
        {label: 7 + first, "id": "", "reason": "customerID: missing value in a column that may not be missing, got ''"},
        {label: 9 + first, "id": ids[2], "reason": repeat.format(f" {ids[2]} ", label, 2 + first)},
    ]
    assert summary.rows_rejected == 3 and summary.rejects_by_column == {"customerID": 3}
    assert _read(tmp_path / "out.csv")["customerID"].is_unique


def test_small_chunks_give_the_one_chunk_result(packaged, test_rows, tmp_path):
    test_rows.to_csv(tmp_path / "in.csv", index=False)
    _score(packaged, tmp_path / "in.csv", tmp_path / "one.csv")
    _score(packaged, tmp_path / "in.csv", tmp_path / "many.csv", chunk_rows=7, threads=1)
    one, many = _read(tmp_path / "one.csv"), _read(tmp_path / "many.csv")
    assert many["customerID"].tolist() == one["customerID"].tolist()
    assert many["label"].tolist() == one["label"].tolist()
    # ONNX Runtime's tree ensemble may differ in the last float32 bit between batch sizes
    np.testing.assert_allclose(many["probability"], one["probability"], atol=1e-6, rtol=0)


def test_missing_column_fails_before_writing(packaged, test_rows, tmp_path):
    test_rows.drop(columns=["tenure", "gender"]).to_csv(tmp_path / "in.csv", index=False)
    (tmp_path / "out.csv").write_bytes(PREVIOUS)
    with pytest.raises(DataError, match=r"missing column\(s\) \['gender', 'tenure'\]"):
        _score(packaged, tmp_path / "in.csv", tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_bytes() == PREVIOUS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]


def test_invalid_utf8_midway_keeps_previous_output_and_the_partial_rows(packaged, test_rows, tmp_path):
    # 12,000 rows (~2 MB): the reader parses 1 MiB blocks, so the rows of the first block are scored before the bad byte
    rows = test_rows.sample(12_000, replace=True, random_state=0).reset_index(drop=True)
    rows["customerID"] = [f"c{i:05d}" for i in range(len(rows))]
    data = rows.to_csv(index=False).encode()
    at = data.index(b"c09600,")  # data row 9601 is line 9602
    (tmp_path / "in.csv").write_bytes(data[:at] + b"\xff" + data[at:])
    (tmp_path / "out.csv").write_bytes(PREVIOUS)
    with pytest.raises(DataError, match=r"not valid UTF-8 at line 9602 \(byte offset \d+\)") as err:
        _score(packaged, tmp_path / "in.csv", tmp_path / "out.csv", chunk_rows=100)
    assert (tmp_path / "out.csv").read_bytes() == PREVIOUS
    scored = int(re.search(r"rows 1\.\.(\d+) were scored and kept in \S+out\.csv\.partial", str(err.value))[1])
    assert 0 < scored <= 9600 and scored % 100 == 0
    partial = _read(tmp_path / "out.csv.partial")
    assert partial["customerID"].tolist() == rows["customerID"][:scored].tolist()
    assert (tmp_path / "out.rejects.csv.partial").is_file() and not (tmp_path / "out.rejects.csv").exists()


@pytest.mark.parametrize("header_only", [False, True])
def test_empty_file(packaged, test_rows, tmp_path, header_only):
    (tmp_path / "in.csv").write_text(test_rows.iloc[:0].to_csv(index=False) if header_only else "")
    (tmp_path / "out.csv").write_bytes(PREVIOUS)
    with pytest.raises(DataError, match="header but no data rows" if header_only else r"empty \(no header"):
        _score(packaged, tmp_path / "in.csv", tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_bytes() == PREVIOUS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]


def _cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "tabrepro.cli", "score", *map(str, args), "--no-progress"]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_cli_exit_codes(packaged, test_rows, tmp_path):
    test_rows.to_csv(tmp_path / "in.csv", index=False)
    serving = ("--serving-dir", packaged / "models" / "serving")
    done = _cli("--input", "in.csv", "--output", "out.parquet", *serving, "--summary", "s.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["rows_scored"] == len(test_rows) == len(pd.read_parquet(tmp_path / "out.parquet"))
    assert (tmp_path / "out.rejects.csv").is_file()
    test_rows.drop(columns="tenure").to_csv(tmp_path / "bad.csv", index=False)
    failed = _cli("--input", "bad.csv", "--output", "out.parquet", *serving, cwd=tmp_path)
    assert failed.returncode == 2 and "missing column(s) ['tenure']" in failed.stderr
    nothing = _cli("--input", "in.csv", "--output", "o.csv", "--serving-dir", tmp_path / "none", cwd=tmp_path)
    assert nothing.returncode == 2 and "manifest.json: not found" in nothing.stderr
