"""What a user gets wrong ends in exit 2 with one message naming the option, path or key, never a traceback.

Each case runs the real command in a subprocess, as a shell or a scheduler would, and checks the exit status, the
message and that nothing was written.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tabrepro.config.params import load_params
from tests.support.unprivileged import unprivileged as without_privilege

REPO = Path(__file__).resolve().parents[2]


def _run(
    *args: str | Path, cwd: Path, module: str = "tabrepro.cli", unprivileged: bool = False
) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", module, *map(str, args)]
    command = without_privilege(command) if unprivileged else command
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=180, check=False)


def _refused(done: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit 2, every fragment in the message, and no traceback."""
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    for fragment in fragments:
        assert fragment in output, f"{fragment!r} not in:\n{output}"
    assert "Traceback" not in output, output
    return output


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """A folder with 50 raw rows, a params file, a serving folder whose manifest was cut short (as a full disk or a
    killed copy leaves it), a folder and a file where outputs may be pointed."""
    params = load_params(REPO / "params.yaml")
    lines = (REPO / params["data"]["source"]).read_text(encoding="utf-8").splitlines(keepends=True)
    (tmp_path / "in.csv").write_text("".join(lines[:51]), encoding="utf-8")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    serving = tmp_path / "models" / "serving"
    serving.mkdir(parents=True)
    (serving / "manifest.json").write_text('{\n  "version": "telco_churn-xgboost-4f2a", "onnx_sha256": "9c1e')
    (serving / "model.onnx").write_bytes(b"\x08\x07onnx")
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "a-file").write_text("not a folder\n")
    return tmp_path


def _score(*args: str | Path, cwd: Path, unprivileged: bool = False) -> subprocess.CompletedProcess:
    options = ("--input", "in.csv", "--serving-dir", "models/serving", "--no-progress")
    return _run("score", *options, *args, cwd=cwd, unprivileged=unprivileged)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--output", "a-folder"), "--output a-folder: is a folder"),
        (("--output", "out.csv", "--summary", "a-folder"), "--summary a-folder: is a folder"),
        (("--output", "out.csv", "--rejects", "a-folder"), "--rejects a-folder: is a folder"),
        (("--output", "a-file/out.csv"), "--output a-file/out.csv: a-file is a file"),
        (("--output", "out.csv", "--drift-report", "a-file/deeper/d.json"), "--drift-report a-file/deeper/d.json"),
    ],
)
def test_score_output_paths_are_checked_before_any_work(sample, args, message):
    _refused(_score(*args, cwd=sample), message)
    assert not list(sample.glob("out*")), "nothing may be written"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--report", "a-folder"), "--report a-folder: is a folder"),
        (("--report", "a-file/drift.json"), "--report a-file/drift.json: a-file is a file"),
        (("--report", "d/drift.json", "--figures", "a-file"), "--figures a-file: is a file; expected a folder"),
    ],
)
def test_drift_output_paths_are_checked_before_any_work(sample, args, message):
    # --params names a file that does not exist: the output check comes before anything is read
    _refused(_run("drift", "--current", "in.csv", "--params", "missing.yaml", *args, cwd=sample), message)
    assert not (sample / "d").exists()


def test_report_output_that_is_a_folder(sample):
    done = _run("report", "--base", "HEAD", "--output", "a-folder", cwd=sample)
    _refused(done, "--output a-folder: is a folder")


def test_an_unwritable_parent_folder(sample):
    """Run without the privilege to ignore modes (as root too: tests/support/unprivileged.py)."""
    locked = sample / "locked"
    locked.mkdir(mode=0o500)
    try:
        done = _score("--output", "locked/out.csv", cwd=sample, unprivileged=True)
        _refused(done, "--output locked/out.csv: cannot write in locked")
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("command", ["score", "drift"])
def test_a_truncated_manifest(sample, command):
    if command == "score":
        done = _score("--output", "out.csv", cwd=sample)
    else:
        reference = ("--reference", "models/reference_stats.json", "--serving-dir", "models/serving")
        done = _run("drift", "--current", "in.csv", *reference, "--report", "d/drift.json", cwd=sample)
    _refused(done, "manifest.json")
    assert not list(sample.glob("out*")) and not (sample / "d").exists()


def test_params_with_an_unknown_group_option_lists_the_options(tmp_path):
    done = _run("params", "model=nonexistent", "--conf", REPO / "conf", "--output", "p.yaml", cwd=tmp_path)
    output = _refused(done, "Could not find 'model/nonexistent'", "Available options in 'model'")
    assert all(family in output for family in ("logreg", "random_forest", "xgboost"))
    assert not (tmp_path / "p.yaml").exists()


@pytest.mark.parametrize(
    ("override", "message"), [("nokey.x=3", "Could not override 'nokey.x'"), ("seed==", "Error parsing override")]
)
def test_params_with_a_bad_override(tmp_path, override, message):
    _refused(_run("params", override, "--conf", REPO / "conf", "--output", "p.yaml", cwd=tmp_path), message)


def test_params_output_that_is_a_folder(tmp_path):
    (tmp_path / "a-folder").mkdir()
    done = _run("params", "--conf", REPO / "conf", "--output", "a-folder", cwd=tmp_path)
    _refused(done, "--output a-folder: is a folder")


def _bad_params(tmp_path: Path, kind: str) -> tuple[str, str]:
    """A ``--params`` value of the given kind and what the message must say."""
    if kind == "not-yaml":
        (tmp_path / "bad.yaml").write_text("seed: 42\npaths: [a\n  b: c\n")
        return "bad.yaml", "bad.yaml: not valid YAML: line 3, column 4"
    if kind == "not-a-mapping":
        (tmp_path / "list.yaml").write_text("- a\n- b\n")
        return "list.yaml", "list.yaml: expected a mapping of sections at the top level, got list"
    if kind == "folder":
        (tmp_path / "conf.d").mkdir()
        return "conf.d", "conf.d: is a folder, not a params file"
    return "missing.yaml", "missing.yaml: params file not found"


@pytest.mark.parametrize(
    ("command", "kind"),
    [
        *[("stage", kind) for kind in ("not-yaml", "not-a-mapping", "folder", "missing")],
        *[(command, kind) for command in ("tune-worker", "drift", "score") for kind in ("not-yaml", "folder")],
    ],
)
def test_a_bad_params_file(tmp_path, command, kind):
    params, message = _bad_params(tmp_path, kind)
    if command == "stage":
        done = _run("--params", params, cwd=tmp_path, module="tabrepro.stages.tune")
    elif command == "drift":
        done = _run("drift", "--current", "in.csv", "--params", params, cwd=tmp_path)
    elif command == "score":
        done = _run("score", "--input", "in.csv", "--output", "o.csv", "--params", params, cwd=tmp_path)
    else:
        done = _run("tune-worker", "--params", params, cwd=tmp_path)
    _refused(done, message)


@pytest.fixture
def dvc_repo(tmp_path: Path) -> Path:
    """An empty git + DVC repository with one commit."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t"}
    env |= {"GIT_COMMITTER_EMAIL": "t@x"}
    for command in (["git", "init", "-q"], ["git", "commit", "-q", "--allow-empty", "-m", "start"]):
        subprocess.run(command, cwd=tmp_path, check=True, env=env)
    (tmp_path / ".dvc").mkdir()
    return tmp_path


def test_report_against_a_revision_that_does_not_exist(dvc_repo):
    done = _run("report", "--base", "nonexistent-rev", cwd=dvc_repo)
    _refused(done, "--base 'nonexistent-rev': no such git revision")


def test_every_command_documents_its_exit_codes():
    for command in ("params", "tune-worker", "report", "drift", "score"):
        done = _run(command, "--help", cwd=REPO)
        assert done.returncode == 0
        text = " ".join(done.stdout.split())
        assert "exit status: 0" in text and ("2 bad input" in text or "2 a bad override" in text), command
        assert "3 an unexpected failure" in text, command


def test_a_worker_number_below_one(tmp_path):
    _refused(_run("tune-worker", "--worker", "0", cwd=tmp_path), "--worker 0: expected a whole number >= 1")
