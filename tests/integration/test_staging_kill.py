"""A stage killed at any step of moving its outputs into place leaves nothing behind once ``dvc repro`` has run
again, even when its new outputs are byte-identical to those ``dvc.lock`` records (issue 20: such a re-run used
to find nothing to do, and the killed run's ``.staging-*`` folder stayed).

A real DVC project with one stage that writes a folder and two files through ``staged_outputs``; the writer
SIGKILLs itself while it computes, or before step N of the commit (its renames and removals), for every N.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

WRITER = textwrap.dedent(
    """
    import os, shutil, signal, sys
    from pathlib import Path
    from tabrepro.io.staging import staged_outputs

    kill_at, steps = os.environ.get("KILL_AT", ""), [0]

    def counted(real):
        def step(*args, **kwargs):
            steps[0] += 1
            if str(steps[0]) == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)
        return step

    outputs = (Path("out/model"), Path("out/metrics.json"), Path("reports/summary.json"))
    with staged_outputs(*outputs, withhold=True) as (model, metrics, summary):
        model.mkdir()
        (model / "weights.bin").write_bytes(bytes(range(256)) * 64)
        metrics.write_text('{"rmse": 1.5}\\n')
        summary.parent.mkdir(parents=True, exist_ok=True)
        summary.write_text('{"rows": 10}\\n')
        if kill_at == "writing":  # killed while the stage computes, before any output moves
            os.kill(os.getpid(), signal.SIGKILL)
        os.replace, shutil.rmtree = counted(os.replace), counted(shutil.rmtree)
    Path(os.environ["STEPS_FILE"]).write_text(str(steps[0]))
    """
)
DVC_YAML = """stages:
  write:
    cmd: python write.py
    deps: [write.py]
    outs:
      - out/model: {persist: true}
      - out/metrics.json: {persist: true, cache: false}
      - reports/summary.json: {persist: true, cache: false}
"""


def _run(project: Path, *args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert not check or done.returncode == 0, done.stdout + done.stderr
    return done


def _leftovers(project: Path) -> list[str]:
    return sorted(str(p.relative_to(project)) for p in project.rglob(".staging-*"))


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    env = {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "STEPS_FILE": str(tmp_path / "steps"),
    }
    env.pop("KILL_AT", None)
    project = tmp_path / "project"
    project.mkdir()
    (project / "write.py").write_text(WRITER)
    (project / "dvc.yaml").write_text(DVC_YAML)
    _run(project, "git", "init", "-q", env=env)
    _run(project, "dvc", "init", "-q", env=env)
    _run(project, "dvc", "repro", env=env)
    return project, env


def test_a_kill_at_any_step_of_the_commit_leaves_nothing_after_the_next_repro(project):
    root, env = project
    steps = int(Path(env["STEPS_FILE"]).read_text())
    assert steps >= 5, "the commit renames and removes several paths"
    lock = (root / "dvc.lock").read_text()
    weights = (root / "out" / "model" / "weights.bin").read_bytes()
    reran = 0
    for kill_at in ["writing", *map(str, range(1, steps + 1))]:
        killed = _run(root, "dvc", "repro", "-f", env={**env, "KILL_AT": kill_at}, check=False)
        assert killed.returncode != 0, f"step {kill_at}: the stage was not killed"
        left = _leftovers(root)
        status = _run(root, "dvc", "status", "--json", env=env).stdout.strip()
        if left:
            assert status != "{}", f"killed before step {kill_at}: {left} left, yet DVC would find nothing to do"
        again = _run(root, "dvc", "repro", env=env).stdout
        reran += "Running stage 'write'" in again
        assert _leftovers(root) == [], f"killed before step {kill_at}: leftovers survive the next dvc repro"
        assert (root / "dvc.lock").read_text() == lock
        assert (root / "out" / "model" / "weights.bin").read_bytes() == weights
    assert reran >= 1
