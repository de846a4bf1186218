"""The one raw reader: prepare's whole-table read, scoring's chunks and drift's chunks are the same reader, with
the same row numbers (CSV lines from 2, Parquet rows from 1) and the same errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from tabrepro.batch.tables import open_chunks
from tabrepro.contract.table import ContractViolation, check_table
from tabrepro.errors import DataError
from tabrepro.io.raw import open_raw, read_raw
from tabrepro.monitoring.inputs import iter_table


def _prepare(path: Path, contract) -> list[pd.DataFrame]:
    """As prepare reads: the whole table; missing columns are left to its one report (``check_table``)."""
    return [read_raw(path, fmt=path.suffix[1:])]


def _whole(path: Path, contract) -> list[pd.DataFrame]:
    return [read_raw(path, fmt=path.suffix[1:], contract=contract)]


def _score(path: Path, contract) -> list[pd.DataFrame]:
    return list(open_chunks(path, contract, chunk_rows=2).frames())


def _drift(path: Path, contract) -> list[pd.DataFrame]:
    return list(iter_table(path, path.suffix[1:], contract))


READERS: dict[str, Callable[[Path, object], list[pd.DataFrame]]] = {
    "prepare": _prepare,
    "whole table": _whole,
    "score": _score,
    "drift": _drift,
}


def _write(raw: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".parquet":
        raw.to_parquet(path, index=False)
    else:
        raw.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize(("fmt", "first"), [("csv", 2), ("parquet", 1)])
def test_rows_are_numbered_alike_and_read_as_text(tiny_raw, tiny_contract, tmp_path, reader, fmt, first):
    path = _write(tiny_raw, tmp_path / f"raw.{fmt}")
    whole = pd.concat(READERS[reader](path, tiny_contract))
    assert whole.index.tolist() == list(range(first, first + len(tiny_raw)))
    assert whole["id"].tolist() == tiny_raw["id"].tolist()
    assert whole["spend"].tolist() == tiny_raw["spend"].tolist()  # " " kept as " ": the grammar decides
    assert whole["active"].astype(str).tolist() == tiny_raw["active"].tolist()


def test_chunks_are_the_whole_table_in_pieces(tiny_raw, tiny_contract, tmp_path):
    path = _write(tiny_raw, tmp_path / "raw.csv")
    source = open_raw(path, tiny_contract, fmt="csv", chunk_rows=4)
    chunks = list(source.frames())
    assert [len(c) for c in chunks] == [4, 2]
    pd.testing.assert_frame_equal(pd.concat(chunks), read_raw(path, fmt="csv"))


def test_typed_parquet_columns_are_read_as_their_text(tiny_contract, tmp_path):
    typed = pd.DataFrame({"id": ["a", "b"], "age": [30, 41], "spend": [1.5, None], "plan": ["pro", "pro"]})
    path = _write(typed.assign(active=[True, False], y=["yes", "no"]), tmp_path / "typed.parquet")
    raw = read_raw(path, fmt="parquet", contract=tiny_contract)
    # a native boolean of a boolean feature reads as the contract's tokens (true_values[0], false_values[0])
    assert raw["age"].tolist() == ["30", "41"] and raw["active"].tolist() == ["Yes", "No"]
    assert raw["spend"].iloc[0] == "1.5" and pd.isna(raw["spend"].iloc[1])  # a null stays missing


def _bad_files(tmp_path: Path, tiny_raw: pd.DataFrame) -> dict[str, tuple[Path, str]]:
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "header.csv").write_text("id,age,spend,plan,active,y\n")
    latin = tiny_raw.assign(plan=["basic", "pro", "caf\xe9", "pro", "basic", "pro"])
    (tmp_path / "latin.csv").write_bytes(latin.to_csv(index=False).encode("latin-1"))
    renamed = tiny_raw.rename(columns={"plan": "plna"}).drop(columns="age")
    return {
        "empty": (tmp_path / "empty.csv", "empty.csv: the file is empty (no header, no rows)"),
        "header only": (tmp_path / "header.csv", "header.csv: the file has a header but no data rows"),
        "not UTF-8": (tmp_path / "latin.csv", "latin.csv: not valid UTF-8 at line 4 (byte offset "),
        "missing csv": (
            _write(renamed, tmp_path / "cols.csv"),
            "cols.csv: missing column(s) ['age', 'plan'] of data contract 'tiny'; columns it does not know: ['plna']",
        ),
        "missing parquet": (
            _write(renamed, tmp_path / "cols.parquet"),
            "cols.parquet: missing column(s) ['age', 'plan'] of data contract 'tiny'; "
            "columns it does not know: ['plna']",
        ),
        "no rows parquet": (_write(tiny_raw.iloc[:0], tmp_path / "none.parquet"), "none.parquet: the file has no data"),
        "not found": (tmp_path / "nope.csv", "nope.csv: not found"),
    }


@pytest.mark.parametrize("reader", READERS)
def test_the_same_errors_from_every_reader(tiny_raw, tiny_contract, tmp_path, reader):
    for case, (path, message) in _bad_files(tmp_path, tiny_raw).items():
        if reader == "prepare" and case.startswith("missing "):
            continue  # prepare reads every column it finds and names the missing ones in its contract report
        with pytest.raises(DataError) as err:
            READERS[reader](path, tiny_contract)
        assert message in str(err.value), (case, str(err.value))


def test_a_table_needs_the_target_scoring_and_drift_do_not(tiny_raw, tiny_contract, tmp_path):
    path = _write(tiny_raw.drop(columns="y"), tmp_path / "raw.csv")
    with pytest.raises(DataError, match=r"missing column\(s\) \['y'\]"):
        _whole(path, tiny_contract)
    with pytest.raises(ContractViolation, match="column 'y': column is missing from the data"):
        check_table(_prepare(path, tiny_contract)[0], tiny_contract, source="raw.csv", row_label="line")
    assert len(pd.concat(_score(path, tiny_contract))) == len(pd.concat(_drift(path, tiny_contract))) == 6
