"""Malformed raw tables and the four commands that read them (``prepare``, ``score``, ``drift``, ``contract
draft``), run in-process through their real ``main()`` with their output captured: shared by
``tests/integration/test_odd_files.py`` and ``bench/fuzz_files.py``.

``Bench`` is a work folder made from a packaged sample (``models/serving``, the reference statistics, prepared
splits): each command reads one file there and its exit status and output are returned. Nothing is mocked: the
commands parse argv, configure logging and map errors to exit codes as they do from a shell.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import shutil
import traceback
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from hypothesis import strategies as st

from tabrepro.cli import main as cli_main
from tabrepro.stages import prepare, run_stage

COMMANDS = ("prepare", "score", "drift", "contract draft")
# drift verdict 1 (retrain) is an answer, not a failure; every other command: 0 done, 2 bad input
ALLOWED = {"prepare": {0, 2}, "score": {0, 2}, "drift": {0, 1, 2}, "contract draft": {0, 2}}


@dataclass(frozen=True)
class Outcome:
    code: int
    output: str


class Bench:
    """A copy of a packaged sample in ``work`` whose params read a raw file given per call."""

    def __init__(self, packaged: Path, work: Path, params: dict) -> None:
        shutil.copytree(packaged, work, ignore=shutil.ignore_patterns("bentos", "*.partial"), dirs_exist_ok=True)
        self.work = work
        self.params = {**params, "drift": {**params["drift"], "min_rows": 100_000}}  # drift reads all, then stops
        self.sample = pd.read_csv(work / "raw" / "telco.csv", dtype="str", keep_default_na=False)
        (work / "out").mkdir(exist_ok=True)

    def prepared_digest(self) -> str:
        """A hash of prepare's outputs (the splits and the data-quality report)."""
        digest = hashlib.sha256()
        for path in [*sorted((self.work / "data" / "prepared").rglob("*")), self.work / "reports/data_quality.json"]:
            if path.is_file():
                digest.update(path.name.encode() + path.read_bytes())
        return digest.hexdigest()

    def run(self, command: str, path: Path) -> Outcome:
        """Run ``command`` on ``path`` in-process (cwd: the work folder); exit status and everything it printed."""
        params = {**self.params, "data": {**self.params["data"], "source": str(path)}}
        params["data"]["format"] = "parquet" if path.suffix == ".parquet" else "csv"
        (self.work / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
        out = self.work / "out"
        argv = {
            "score": ["score", "--input", str(path), "--output", str(out / "s.csv"), "--no-progress"],
            "drift": ["drift", "--current", str(path), "--report", str(out / "drift.json")],
            "contract draft": [
                "contract",
                "draft",
                str(path),
                "--target",
                "Churn",
                "--positive",
                "Yes",
                "--output",
                str(out / "c.yaml"),
                "--force",
            ],
        }
        with contextlib.chdir(self.work):
            if command == "prepare":
                return _capture(lambda: run_stage("prepare", prepare._main, ["--params", "params.yaml"]))
            return _capture(lambda: cli_main(argv[command]))


def _capture(call) -> Outcome:
    """Exit status and output of an entry point; an exception escaping it is exit 3 with its traceback."""
    buffer = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:]
    for handler in saved:
        root.removeHandler(handler)
    try:
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            try:
                call()
                code = 0
            except SystemExit as exc:
                code = int(exc.code or 0)
            except Exception:  # what a shell would see as a traceback (counted as exit 3)
                buffer.write("Traceback (escaped):\n" + traceback.format_exc())
                code = 3
    finally:
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        for handler in saved:
            root.addHandler(handler)
    return Outcome(code, buffer.getvalue())


# ---- malformed files -------------------------------------------------------------------------------------------

_ODD_TEXT = st.sampled_from(['"', '""', ",", "\n", "\r", "\r\n", "\x00", "\ufeff", "é", " ", "", "Yes", "-1", "1e309"])
_CSV_MUTATIONS = (
    "duplicate_name",
    "extra_field",
    "missing_field",
    "quoted_newline",
    "blank_line",
    "long_value",
    "odd_text",
    "bad_bytes",
    "truncate",
    "drop_header",
    "crlf",
    "header_only",
)


@st.composite
def malformed_csv(draw: st.DrawFn, sample: pd.DataFrame) -> bytes:
    """A CSV export of a few rows of ``sample`` with one to three mutations (see ``_CSV_MUTATIONS``)."""
    rows = draw(st.integers(1, min(40, len(sample))))
    lines = sample.iloc[:rows].to_csv(index=False).splitlines()
    for mutation in draw(st.lists(st.sampled_from(_CSV_MUTATIONS), min_size=1, max_size=3)):
        lines = _mutate_csv(draw, mutation, lines)
    return "\n".join(lines).encode("utf-8", "surrogateescape") + b"\n"  # bad_bytes: \udcff -> a raw 0xff


def _mutate_csv(draw: st.DrawFn, mutation: str, lines: list[str]) -> list[str]:
    at = draw(st.integers(0, len(lines) - 1))
    header = lines[0].split(",")
    if mutation == "duplicate_name" and len(header) > 1:
        i, j = draw(st.integers(0, len(header) - 1)), draw(st.integers(0, len(header) - 1))
        header[j] = header[i]
        return [",".join(header), *lines[1:]]
    if mutation == "extra_field":
        return [*lines[:at], lines[at] + ",extra", *lines[at + 1 :]]
    if mutation == "missing_field":
        return [*lines[:at], lines[at].rpartition(",")[0], *lines[at + 1 :]]
    if mutation == "quoted_newline":
        return [*lines[:at], '"a\nb",' + lines[at].partition(",")[2], *lines[at + 1 :]]
    if mutation == "blank_line":
        return [*lines[:at], "", *lines[at:]]
    if mutation == "long_value":
        size = draw(st.sampled_from([131_073, 600_000]))
        return [*lines[:at], "x" * size + "," + lines[at].partition(",")[2], *lines[at + 1 :]]
    if mutation == "odd_text":
        return [*lines[:at], draw(_ODD_TEXT) + lines[at][draw(st.integers(0, len(lines[at]))) :], *lines[at + 1 :]]
    if mutation == "bad_bytes":
        return [*lines[:at], lines[at] + "\udcff\udcfe", *lines[at + 1 :]]
    if mutation == "truncate":
        text = "\n".join(lines)
        return text[: draw(st.integers(0, len(text)))].split("\n")
    if mutation == "drop_header":
        return lines[1:] or [""]
    if mutation == "crlf":
        return [line + "\r" for line in lines]
    return lines[:1]  # header_only


_NATIVE = ("bool", "int", "float", "timestamp", "binary", "null", "list")


@st.composite
def malformed_parquet(draw: st.DrawFn, sample: pd.DataFrame) -> bytes:
    """A Parquet file of a few rows of ``sample``: some columns of other native types, repeated or dropped names,
    no rows, or its bytes cut short or overwritten."""
    rows = draw(st.integers(0, min(40, len(sample))))
    table = pa.Table.from_pandas(sample.iloc[:rows], preserve_index=False)
    for name in draw(st.lists(st.sampled_from(table.column_names), max_size=4, unique=True)):
        i = table.column_names.index(name)
        table = table.set_column(i, name, _native(draw(st.sampled_from(_NATIVE)), table.num_rows))
    names = table.column_names
    change = draw(st.sampled_from(["none", "repeat", "drop"]))
    if change == "repeat":
        table = table.rename_columns([*names[:-1], names[draw(st.integers(0, len(names) - 2))]])
    elif change == "drop":
        table = table.drop_columns([names[draw(st.integers(0, len(names) - 1))]])
    sink = io.BytesIO()
    pq.write_table(table, sink)
    data = sink.getvalue()
    cut = draw(st.sampled_from(["none", "none", "truncate", "overwrite"]))
    if cut == "truncate":
        return data[: draw(st.integers(0, len(data)))]
    if cut == "overwrite":
        at = draw(st.integers(0, len(data) - 1))
        return data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at + 16 :]
    return data


def _native(kind: str, rows: int) -> pa.Array:
    values = {
        "bool": pa.array([i % 2 == 0 for i in range(rows)]),
        "int": pa.array(range(rows), pa.int64()),
        "float": pa.array([i / 3 for i in range(rows)]),
        "timestamp": pa.array([pd.Timestamp("2024-01-01") + pd.Timedelta(days=i) for i in range(rows)]),
        "binary": pa.array([bytes([i % 256, 255]) for i in range(rows)]),
        "null": pa.nulls(rows),
        "list": pa.array([[i] for i in range(rows)]),
    }
    return values[kind]
