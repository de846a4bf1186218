"""`dvc repro` on an odd raw file: prepare exits 2 naming the line, and its outputs and dvc.lock stay as they were
(issue 20's acceptance, through the real dvc CLI on a one-stage project)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from tabrepro.config.params import load_params
from tests.conftest import write_sample
from tests.e2e.conftest import dvc, git

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
DVC_YAML = """\
stages:
  prepare:
    cmd: python -m tabrepro.stages.prepare
    deps: [raw/telco.csv]
    params: [data, split, tune.cv_folds]
    outs:
      - data/prepared:
          persist: true
      - reports/data_quality.json:
          cache: false
          persist: true
"""


def _digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted([*(root / "data/prepared").rglob("*"), root / "reports/data_quality.json", root / "dvc.lock"]):
        if path.is_file():
            digest.update(path.as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


def test_a_refused_raw_file_leaves_outputs_and_dvc_lock_unchanged(tmp_path):
    params = write_sample(tmp_path, load_params(REPO / "params.yaml"), rows=400, seed=3)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    (tmp_path / "dvc.yaml").write_text(DVC_YAML, encoding="utf-8")
    git(tmp_path, "init", "-q")
    dvc(tmp_path, "init", "-q")
    dvc(tmp_path, "repro")
    before = _digest(tmp_path)
    raw = tmp_path / "raw" / "telco.csv"
    lines = raw.read_text(encoding="utf-8").splitlines()
    for case, change, message in [
        ("repeated name", lambda ls: [ls[0].replace("PhoneService", "tenure"), *ls[1:]], "repeated column names"),
        ("field too many", lambda ls: [*ls[:100], ls[100] + ",x", *ls[101:]], "line 101 has 22 fields"),
        ("quoted newline", lambda ls: [*ls[:50], '"a\nb",' + ls[50].partition(",")[2], *ls[51:]], "line 51"),
    ]:
        raw.write_text("\n".join(change(lines)) + "\n", encoding="utf-8")
        done = dvc(tmp_path, "repro", check=False)
        output = done.stdout + done.stderr
        assert done.returncode != 0 and message in output and "Traceback" not in output, (case, output)
        assert _digest(tmp_path) == before, case
