"""The README's command blocks, as a new user runs them: a stale example fails here, not on someone else's machine.

Each block in README.md and docs/*.md (the manual the README links to) carries an id, `<!-- readme-test: ID -->`
on the line before it, so blocks are found by id, not by line number. Every command block (```bash, ```sh) must
have one, and every id must be in exactly one of the lists below: RUN (run as written, in a copy of the reproduced
sample repository, see conftest.py), COMPOSED (each `dvc exp run -S` / `tabrepro params` / `tabrepro tune-worker`
override in it is composed as DVC composes it, the pipeline is not run) or SKIPPED (with the reason). A new block
without an id, or an id in no list, fails `test_every_block_has_an_id_and_a_way_to_be_checked`.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tabrepro.config.compose import write_params
from tabrepro.config.params import ModelParams, TuneParams, load_params, read_section
from tests.e2e.conftest import REPO, env

pytestmark = pytest.mark.e2e

DOCS = (REPO / "README.md", *sorted((REPO / "docs").glob("*.md")))
MARKER = re.compile(r"<!-- readme-test: ([a-z0-9-]+) -->")
COMMAND_LANGUAGES = {"bash", "sh", "shell", "console"}

# run as written (test_readme_run.py)
RUN = ("env", "bento-import", "bento-serve", "predict", "s3-local", "remote-config", "minio", "pg-start")
# each override composed (below); the pipeline runs themselves are tests/e2e/test_experiments.py and test_tune.py
COMPOSED = ("report", "experiments", "queue", "pg-tune", "tasks")
TABLES = ("reruns",)  # checked against `dvc status` (below)
SKIPPED = {
    "quick-start": "make repro is the full data (107 s idle) and make test the whole suite (~17 min); the e2e "
    "session's `dvc repro` of the sample runs the same pipeline",
    "new-data-set": "my_table.csv stands for your table; test_experiments.py::test_a_new_data_set_is_two_yaml_files "
    "runs the same steps on a made-up table",
    "make-serve": "the same server as bento-serve, started from models/serving; tests/integration/test_serving.py "
    "serves it over HTTP",
    "bench-serving": "benchmarks on the full data: they print numbers, nothing to assert",
    "bench-quality": "a benchmark on the full data (repeated CV): it prints numbers, nothing to assert",
    "score": "new_customers.csv stands for your export; tests/integration/test_score*.py run `tabrepro score`",
    "drift": "data/new/2026-11.csv stands for your new rows; tests/integration/test_drift.py runs `tabrepro drift`",
    "rollout": "/srv/new/models/serving stands for your candidate; tests/integration/test_serving*.py serve shadow "
    "and canary",
    "rollback": "<previous tag> stands for a revision of yours; tests/e2e/test_rollback.py serves two bentos by tag",
    "dask-score": "exports/ and tcp://scheduler:8786 stand for your files and cluster; tests/integration/"
    "test_dask*.py run the same commands on a LocalCluster",
    "credentials": "placeholders for your keys (s3-local exports test keys the same way)",
    "push-pull": "<repository> stands for your git remote; tests/e2e/test_remote.py pushes, clones and pulls",
    "exp-push": "needs a git remote `origin`; tests/e2e/test_remote.py runs exp push / pull through a bare origin",
    "import-url": "s3://my-raw-bucket stands for your bucket; tests/e2e/test_remote.py imports and updates from moto",
    "outcomes": "labels/ and logs/ stand for yours; tests/integration/test_outcomes.py runs `tabrepro outcomes` end "
    "to end on a log in the service's format",
    "lock-upgrade": "an upgrade changes the lock on purpose; `make venv` installs the committed lock with "
    "--require-hashes, which fails on any pin or hash that does not match",
    "import-url-remote": "s3://my-raw-bucket and minio.example.org stand for yours; test_remote.py covers import-url",
    "compare-data-sets": "needs experiments to compare; tests/e2e/test_contract_file.py runs this command on Telco "
    "and an experiment with -S data=titanic",
}


@dataclass(frozen=True)
class Block:
    id: str  # "" when the block has no marker
    where: str  # file:line of its first line
    language: str  # the fence's language, or "table"
    text: str


def read_blocks(files: tuple[Path, ...] | list[Path] = DOCS) -> list[Block]:
    """Every fenced block and marked table, with the id of the marker on the line before it (or "")."""
    found = []
    for path in files:
        lines = path.read_text(encoding="utf-8").splitlines()
        marker, i = "", 0
        while i < len(lines):
            line, where = lines[i], f"{path.name}:{i + 1}"
            if match := MARKER.fullmatch(line.strip()):
                marker, i = match.group(1), i + 1
                continue
            if line.startswith("```"):
                end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
                language = line[3:].strip()
                if marker or language in COMMAND_LANGUAGES:
                    found.append(Block(marker, where, language, "\n".join(lines[i + 1 : end])))
                marker, i = "", end + 1
                continue
            if marker and line.startswith("|"):
                end = next((j for j in range(i, len(lines)) if not lines[j].startswith("|")), len(lines))
                found.append(Block(marker, where, "table", "\n".join(lines[i:end])))
                marker, i = "", end
                continue
            if marker and line.strip():
                found.append(Block(marker, where, "nothing", ""))  # a marker must sit right before its block
                marker = ""
            i += 1
    return found


def blocks() -> dict[str, Block]:
    return {b.id: b for b in read_blocks() if b.id}


def clean_env() -> dict[str, str]:
    """A fresh shell's environment: what env.sh sets is left for the block to set."""
    drop = {"BENTOML_HOME", "DVC_NO_ANALYTICS", "BENTOML_DO_NOT_TRACK", "ORT_DISABLE_TELEMETRY", "OTEL_SDK_DISABLED"}
    return {k: v for k, v in env().items() if k not in drop}


def test_every_block_has_an_id_and_a_way_to_be_checked():
    found = read_blocks()
    unmarked = [b.where for b in found if not b.id]
    assert not unmarked, f"command blocks without a `<!-- readme-test: ID -->` line before them: {unmarked}"
    ids = [b.id for b in found]
    assert len(ids) == len(set(ids)), f"ids used twice: {sorted({i for i in ids if ids.count(i) > 1})}"
    lists = [set(RUN), set(COMPOSED), set(SKIPPED), set(TABLES)]
    assert sum(len(s) for s in lists) == len(set().union(*lists)), "an id is in more than one list"
    assert set(ids) == set().union(*lists), (
        f"in the docs, in no list: {sorted(set(ids) - set().union(*lists))}; "
        f"listed, not in the docs: {sorted(set().union(*lists) - set(ids))}"
    )
    assert all(len(reason) >= 20 for reason in SKIPPED.values()), "each skipped block says why"


def test_read_blocks_finds_an_unmarked_block(tmp_path: Path):
    doc = tmp_path / "x.md"
    doc.write_text("<!-- readme-test: a -->\n```bash\necho a\n```\n\n```bash\necho b\n```\n\n```yaml\nk: v\n```\n")
    found = read_blocks([doc])
    assert [(b.id, b.text) for b in found] == [("a", "echo a"), ("", "echo b")]


def _overrides(text: str) -> list[tuple[str, list[str]]]:
    """(command, overrides) of each `dvc exp run -S ...`, `tabrepro params ...` and `tabrepro tune-worker ...`."""
    found = []
    for line in text.replace("\\\n", " ").splitlines():
        if line.lstrip().startswith("#"):
            continue
        for command in re.split(r"&&|;|\|\|", line.split(" # ")[0]):
            words = shlex.split(command, comments=True)
            if words[:3] == ["dvc", "exp", "run"]:
                found.append(("dvc exp run", [words[i + 1] for i, w in enumerate(words) if w == "-S"]))
            elif words[:2] in (["tabrepro", "params"], ["tabrepro", "tune-worker"]):
                found.append((" ".join(words[:2]), [w for w in words[2:] if "=" in w and not w.startswith("-")]))
    return found


@pytest.mark.parametrize("block_id", sorted(COMPOSED))
def test_the_overrides_of_a_block_compose(block_id: str, tmp_path: Path):
    """Each override list composes from conf/ (a sweep `a=1,2` composes once per value), as `dvc exp run` does."""
    commands = _overrides(blocks()[block_id].text)
    assert commands, f"{block_id}: no dvc exp run / tabrepro params / tune-worker line found"
    shutil.copytree(REPO / "conf" / "contracts", tmp_path / "conf" / "contracts")  # what params' data.contract names
    for _, overrides in commands:
        sweeps = [_sweep(o) for o in overrides]
        for i in range(max((len(s) for s in sweeps), default=1)):
            chosen = [s[min(i, len(s) - 1)] for s in sweeps]
            write_params(tmp_path / "params.yaml", REPO / "conf", chosen)  # a ConfigError names the bad override
            params = load_params(tmp_path / "params.yaml")  # and the sections the overrides touch are valid
            read_section(params, "model", ModelParams), read_section(params, "tune", TuneParams)


def _sweep(override: str) -> list[str]:
    key, _, value = override.partition("=")
    if "," in value and not value.startswith(("[", "'", '"')):
        return [f"{key}={v}" for v in value.split(",")]
    return [override]


def _rerun_rows() -> list[tuple[str, set[str]]]:
    rows = []
    for line in blocks()["reruns"].text.splitlines()[2:]:
        change, stages = (cell.strip() for cell in line.strip("|").split("|"))
        rows.append((re.match(r"`([^`]+)`", change).group(1), {s.strip() for s in stages.split(",")}))
    return rows


def test_what_a_change_of_params_marks_is_what_dvc_status_lists(workspace: Path):
    """The README's table of what each change re-runs, against `dvc status` after composing the override."""
    rows = _rerun_rows()
    assert len(rows) >= 10
    original = (workspace / "params.yaml").read_bytes()
    wrong = {}
    for override, expected in rows:
        write_params(workspace / "params.yaml", workspace / "conf", [override])
        status = subprocess.run(
            [sys.executable, "-m", "dvc", "status", "--json"], cwd=workspace, env=env(), capture_output=True, text=True
        )
        listed = set(json.loads(status.stdout))
        if listed != expected:
            wrong[override] = f"README says {sorted(expected)}, dvc status lists {sorted(listed)}"
        (workspace / "params.yaml").write_bytes(original)
    assert not wrong, wrong
