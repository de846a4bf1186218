"""Odd files and hostile params: exit 2 with a message naming the physical line, column, key or file, never a
traceback or exit 3, and no secret in any output (issue 20).

Each case runs the real command in a subprocess, as a shell or ``dvc repro`` would; the raw-file cases also run
all four readers (``prepare``, ``score``, ``drift``, ``contract draft``) in-process through their ``main()``.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tabrepro.config.params import load_params
from tests.support.odd_files import COMMANDS, Bench

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "p@s3cr:et/PW%40#x"  # holds @ : / % #
FRAGMENTS = ("s3cr", "et/PW", "PW%40", "#x")  # any piece of it is a leak


def _run(*args: str | Path, cwd: Path, module: str = "tabrepro.cli", **kw) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", module, *map(str, args)]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=180, check=False, **kw)


def _refused(done: subprocess.CompletedProcess, *fragments: str) -> str:
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    for fragment in fragments:
        assert fragment in output, f"{fragment!r} not in:\n{output}"
    assert "Traceback" not in output, output
    return output


@pytest.fixture(scope="module")
def bench(packaged: Path, tmp_path_factory: pytest.TempPathFactory) -> Bench:
    params = load_params(REPO / "params.yaml")
    return Bench(packaged, tmp_path_factory.mktemp("odd"), {**params, "data": {**params["data"]}})


def _lines(bench: Bench, rows: int = 60) -> list[str]:
    return bench.sample.iloc[:rows].to_csv(index=False).splitlines()


def _odd_csv(bench: Bench, case: str) -> tuple[list[str], str]:
    """The lines of one odd CSV and the message fragment every reader must print."""
    lines = _lines(bench)
    header = lines[0].split(",")
    if case == "repeated name":
        lines[0] = ",".join(["tenure" if h == "PhoneService" else h for h in header])
        return lines, "line 1 (the header): repeated column names: 'tenure' in columns 6, 7"
    if case == "long header name":
        lines[0] = lines[0].replace("gender", "g" * 200_000)
        return lines, "line 1 (the header), column 2: a value of 200,000 characters (at most 131,072 are read)"
    if case == "long value":
        lines[30] = (
            lines[30].replace(",Female,", ",F" + "e" * 140_000 + ",").replace(",Male,", ",M" + "a" * 140_000 + ",")
        )
        return lines, "line 31, column 'gender': a value of 140,001 characters"
    if case == "one field too many":
        lines[40] += ",extra"
        return lines, "line 41 has 22 fields where the header (line 1) has 21"
    if case == "one field too few":
        lines[40] = lines[40].rpartition(",")[0]
        return lines, "line 41 has 20 fields where the header (line 1) has 21"
    if case == "quoted newline":
        first, rest = lines[9].split(",", 2)[:2], lines[9].split(",", 2)[2]
        lines[9] = f'{first[0]},"{first[1][:2]}\n{first[1][2:]}",{rest}'
        return lines, "line 10, column 'gender': a quoted value runs over onto line 11"
    if case == "blank line":
        return [*lines[:20], "", *lines[20:]], "line 21 is empty"
    raise AssertionError(case)


CSV_CASES = (
    "repeated name",
    "long header name",
    "long value",
    "one field too many",
    "one field too few",
    "quoted newline",
    "blank line",
)


@pytest.mark.parametrize("case", CSV_CASES)
def test_an_odd_csv_is_refused_alike_by_every_reader(bench, tmp_path, case):
    lines, message = _odd_csv(bench, case)
    path = tmp_path / "odd.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    before = bench.prepared_digest()
    for command in COMMANDS:
        outcome = bench.run(command, path)
        assert outcome.code == 2, (command, outcome.output)
        assert message in outcome.output and "Traceback" not in outcome.output, (command, outcome.output)
    assert bench.prepared_digest() == before
    # and from a shell, as a user would run it
    done = _run("contract", "draft", path, "--target", "Churn", "--positive", "Yes", "--output", "c.yaml", cwd=tmp_path)
    _refused(done, message)
    assert not (tmp_path / "c.yaml").exists()


def test_a_line_after_a_quoted_line_break_is_not_misnumbered(bench, tmp_path):
    """The issue's case: a bad value on physical line 42 after a quoted value spanning two lines was named as line
    41. Such a file is now refused at the line break; once it is removed, the bad value is named at its line."""
    lines, _ = _odd_csv(bench, "quoted newline")
    lines[40] = lines[40].replace(",Month-to-month,", ",Monthly,").replace(",One year,", ",Monthly,")
    lines[40] = lines[40].replace(",Two year,", ",Monthly,")
    path = tmp_path / "raw.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert "line 10, column 'gender'" in bench.run("prepare", path).output
    path.write_text("\n".join(lines).replace('"Ma\nle"', "Male").replace('"Fe\nmale"', "Female") + "\n")
    outcome = bench.run("prepare", path)
    assert outcome.code == 2 and "line 41: 'Monthly'" in outcome.output, outcome.output


def test_a_50_mb_cell_is_refused_by_its_line(bench, tmp_path):
    lines = _lines(bench, 20)
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8") as fh:
        fh.write("\n".join(lines[:10]) + "\n")
        fh.write("x" * 50_000_000 + "," + lines[10].partition(",")[2] + "\n")
        fh.write("\n".join(lines[11:]) + "\n")
    for command in ("score", "drift"):
        outcome = bench.run(command, path)
        assert outcome.code == 2 and "line 11 is longer than 524,288 bytes" in outcome.output, outcome.output
        assert "block size" not in outcome.output
    _refused(_prepare_subprocess(bench, path), "line 11 is longer than 524,288 bytes")


def _prepare_subprocess(bench: Bench, path: Path) -> subprocess.CompletedProcess:
    params = {**bench.params, "data": {**bench.params["data"], "source": str(path), "format": path.suffix[1:]}}
    (bench.work / "odd_params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    return _run("--params", "odd_params.yaml", cwd=bench.work, module="tabrepro.stages.prepare")


def test_prepare_names_the_line_where_a_repeated_id_first_appears(bench, tmp_path):
    lines = _lines(bench)
    lines[39] = lines[4].split(",")[0] + "," + lines[39].split(",", 1)[1]
    path = tmp_path / "ids.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _refused(_prepare_subprocess(bench, path), f"line 40: {lines[4].split(',')[0]!r} (first at line 5)")


# ---- Parquet ---------------------------------------------------------------------------------------------------


def _native(bench: Bench) -> pd.DataFrame:
    frame = bench.sample.copy()
    for column in ("Partner", "Dependents", "PhoneService", "PaperlessBilling"):
        frame[column] = frame[column] == "Yes"
    frame["SeniorCitizen"] = frame["SeniorCitizen"] == "1"
    frame["tenure"] = frame["tenure"].astype(float)  # an integer feature as whole floats
    frame["MonthlyCharges"] = frame["MonthlyCharges"].astype(float)
    return frame


def test_native_parquet_types_read_as_the_contracts_tokens(bench, tmp_path):
    path = tmp_path / "native.parquet"
    _native(bench).to_parquet(path, index=False)
    done = _run("score", "--input", path, "--output", tmp_path / "s.csv", "--no-progress", cwd=bench.work)
    assert done.returncode == 0, done.stderr
    assert f"{len(bench.sample)} scored, 0 rejected" in done.stderr
    assert bench.run("prepare", path).code == 0


def test_a_run_that_rejects_every_row_is_not_a_success(bench, tmp_path):
    path = tmp_path / "rejected.parquet"
    _native(bench).assign(Contract="Monthly").to_parquet(path, index=False)
    done = _run("score", "--input", path, "--output", tmp_path / "s.csv", "--no-progress", cwd=bench.work)
    _refused(done, f"every one of the {len(bench.sample)} rows of {path} was rejected")
    assert len(pd.read_csv(tmp_path / "s.rejects.csv")) == len(bench.sample)  # the reasons are kept


def test_repeated_parquet_names_are_refused(bench, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(bench.sample, preserve_index=False)
    pq.write_table(table.rename_columns(["tenure" if n == "PhoneService" else n for n in table.column_names]),
                   path := tmp_path / "dup.parquet")  # fmt: skip
    message = "repeated column names: 'tenure' in columns 6, 7"
    _refused(_run("score", "--input", path, "--output", tmp_path / "s.csv", cwd=bench.work), message)
    for command in COMMANDS:
        outcome = bench.run(command, path)
        assert outcome.code == 2 and message in outcome.output, (command, outcome.output)


# ---- score's outputs -------------------------------------------------------------------------------------------


def test_score_onto_a_device_or_a_pipe_is_refused(bench, tmp_path):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    for output in ("/dev/null", fifo):
        done = _run("score", "--input", "raw/telco.csv", "--output", output, cwd=bench.work)
        _refused(done, f"--output {output}: not a regular file")
    assert Path("/dev/null").is_char_device() and fifo.is_fifo()


@pytest.mark.parametrize(
    "command",
    [
        ("drift", "--current", "raw/telco.csv", "--report"),
        ("contract", "draft", "raw/telco.csv", "--target", "Churn", "--positive", "Yes", "--output"),
        ("outcomes", "--labels", "raw/telco.csv", "--predictions", "raw", "--report"),
    ],
    ids=["drift", "contract draft", "outcomes"],
)
def test_every_command_refuses_a_device_or_a_pipe_as_its_output_file(bench, tmp_path, command):
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    for output in ("/dev/null", fifo):
        done = _run(*command, output, cwd=bench.work)
        _refused(done, f"{output}: not a regular file")
    assert Path("/dev/null").is_char_device() and fifo.is_fifo()


def _small_files() -> None:  # in the child: a file may grow to 16 KiB, then writes fail as on a full disk
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (16_384, 16_384))


def test_score_on_a_full_disk_leaves_no_partial_files(bench, tmp_path):
    (tmp_path / "s.csv").write_text("previous\n")
    args = ("score", "--input", "raw/telco.csv", "--output", tmp_path / "s.csv", "--chunk-rows", "100")
    done = _run(*args, "--no-progress", cwd=bench.work, preexec_fn=_small_files)
    _refused(done, f"{tmp_path / 's.csv'}: cannot write {tmp_path / 's.csv.partial'}: ", "File too large")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.csv"]
    assert (tmp_path / "s.csv").read_text() == "previous\n"


# ---- contract draft, report -------------------------------------------------------------------------------------


def test_a_contract_drafted_from_the_target_alone_is_refused(bench, tmp_path):
    path = tmp_path / "one.csv"
    bench.sample[["Churn"]].to_csv(path, index=False)
    done = _run("contract", "draft", path, "--target", "Churn", "--positive", "Yes", "--output", "c.yaml", cwd=tmp_path)
    _refused(done, "no feature to draft besides the target 'Churn'")
    assert not (tmp_path / "c.yaml").exists()


@pytest.fixture
def metrics_repo(tmp_path: Path) -> Path:
    """A git + DVC repository whose committed stage declares metrics.json."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t"}
    env |= {"GIT_COMMITTER_EMAIL": "t@x"}
    (tmp_path / "dvc.yaml").write_text("stages:\n  train:\n    cmd: 'true'\n    metrics:\n    - metrics.json:\n"
                                       "        cache: false\n")  # fmt: skip
    (tmp_path / "metrics.json").write_text('{"roc_auc": 0.9}\n')
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True, env=env)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=tmp_path, check=True, env=env)
    for command in (["git", "add", "-A"], ["git", "commit", "-q", "-m", "start"]):
        subprocess.run(command, cwd=tmp_path, check=True, env=env)
    return tmp_path


@pytest.mark.parametrize("damage", ["deleted", "not UTF-8"])
def test_report_on_a_damaged_metrics_file_is_bad_input(metrics_repo, damage):
    metrics = metrics_repo / "metrics.json"
    if damage == "deleted":
        metrics.unlink()
        message = "metrics.json: missing from the workspace"
    else:
        metrics.write_bytes(b'{"roc_auc": 0.9, "note": "caf\xe9"}\n')
        message = "metrics.json: not valid UTF-8 at byte offset 29"
    _refused(_run("report", "--base", "HEAD", "--fail-on", "roc_auc:-0.01", cwd=metrics_repo), message)


# ---- params ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("seed", 2**32, "seed: expected a whole number in [0, 2**32 - 1], got 4294967296"),
        ("split.seed", 2**32, "split.seed: Input should be less than or equal to 4294967295"),
        ("evaluate.bootstrap.seed", -1, "evaluate.bootstrap.seed: Input should be greater than or equal to 0"),
        ("tune.timeout", float("inf"), "tune.timeout: Input should be a finite number"),
    ],
)
def test_params_out_of_range_are_refused_before_any_work(tmp_path, key, value, message):
    params = load_params(REPO / "params.yaml")
    section = params
    *parents, last = key.split(".")
    for part in parents:
        section = section[part]
    section[last] = value
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    stage = {"seed": "tune", "split.seed": "prepare", "evaluate.bootstrap.seed": "evaluate", "tune.timeout": "tune"}
    done = _run("--params", "params.yaml", cwd=tmp_path, module=f"tabrepro.stages.{stage[key]}")
    _refused(done, message)
