"""docs/architecture.md's diagrams are generated (tools/architecture.py) and must match their sources."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from dvc.repo import Repo
from tools.architecture import DOC, ROOT, generate, main, stage_edges, stage_io


def test_the_committed_document_is_what_the_sources_generate(capsys: pytest.CaptureFixture[str]):
    assert main(["--check"]) == 0, f"run `python tools/architecture.py` and commit {DOC}:\n{capsys.readouterr().out}"


def test_the_stage_graph_has_the_edges_dvc_sees():
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    ours = set(stage_edges(stage_io(dvc, params)))
    with Repo(str(ROOT)) as repo:  # DVC's own graph: an edge from each stage to the stages it depends on
        theirs = {(dep.addressing, stage.addressing) for stage, dep in repo.index.graph.edges}
    assert ours == theirs


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    """A copy of the files the document is generated from, and of the document."""
    for name in ("pyproject.toml", "dvc.yaml", "params.yaml", str(DOC)):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def test_a_new_layer_makes_the_document_stale_until_regenerated(sources: Path):
    pyproject = sources / "pyproject.toml"
    text = pyproject.read_text()
    assert '  "errors",\n' in text
    pyproject.write_text(text.replace('  "errors",\n', '  "onnxrt | (gpu)",  # planted\n  "errors",\n', 1))
    assert main(["--check"], root=sources) == 1
    assert main([], root=sources) == 0
    assert main(["--check"], root=sources) == 0
    doc = (sources / DOC).read_text()
    assert '["onnxrt | (gpu)"]' in doc
    assert doc.count("```mermaid") == 2  # replaced in place, not appended


def test_a_new_stage_appears_with_the_data_it_reads(sources: Path):
    dvc = yaml.safe_load((sources / "dvc.yaml").read_text())
    dvc["stages"]["audit"] = {"cmd": "true", "deps": ["${paths.metrics}", "src/x.py"], "outs": ["reports/audit.json"]}
    (sources / "dvc.yaml").write_text(yaml.safe_dump(dvc))
    stages = generate(sources)["stages"]
    assert '|"reports/metrics.json"| s_audit' in stages
    assert "src/x.py" not in stages  # code dependencies are not drawn


def test_missing_markers_or_an_unknown_param_exit_2(sources: Path, capsys: pytest.CaptureFixture[str]):
    doc = sources / DOC
    doc.write_text(doc.read_text().replace("<!-- /generated:stages -->", ""))
    assert main(["--check"], root=sources) == 2
    assert "generated:stages" in capsys.readouterr().err
    shutil.copy(ROOT / DOC, doc)
    (sources / "dvc.yaml").write_text((sources / "dvc.yaml").read_text().replace("${paths.model}", "${paths.nope}"))
    assert main(["--check"], root=sources) == 2
    assert "${paths.nope} is not in params.yaml" in capsys.readouterr().err
