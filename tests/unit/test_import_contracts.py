"""The layer table of ``pyproject.toml`` (import-linter) holds, and breaks on what it is meant to forbid.

Each case copies ``src/tabrepro`` and ``pyproject.toml`` to a temporary folder, plants one import there (inside a
function, so the lazy kind is proven to count) and runs the real ``lint-imports`` on the copy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _copy_tree(tmp_path: Path) -> Path:
    package = tmp_path / "src" / "tabrepro"
    shutil.copytree(ROOT / "src" / "tabrepro", package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the package under ``root/src`` (first on the path, before the editable install)."""
    env = {**os.environ, "PYTHONPATH": str(root / "src"), "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(root / "pyproject.toml")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _plant_lazy_import(root: Path, where: str, module: str) -> None:
    target = root / "src" / "tabrepro" / where
    planted = f"\n\ndef _planted() -> None:\n    import {module}  # noqa: F401\n"
    target.write_text(target.read_text(encoding="utf-8") + planted, encoding="utf-8")


def _broken(output: str) -> list[str]:
    return [line.split(" BROKEN")[0] for line in output.splitlines() if " BROKEN" in line]


def test_the_real_tree_keeps_every_contract(tmp_path: Path) -> None:
    result = _lint_imports(_copy_tree(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
    assert "Layers: a package imports only the layers below it KEPT" in result.stdout


@pytest.mark.parametrize(
    ("where", "module", "contract", "named"),
    [
        # evaluation (measure) reaching up into reporting (the PR report): an upward import, no cycle
        (
            "evaluation/metrics.py",
            "tabrepro.reporting.tolerances",
            "Layers: a package imports only the layers below it",
            "tabrepro.evaluation.metrics -> tabrepro.reporting.tolerances",
        ),
        # contract.table imports contract.spec; spec importing table back is a cycle inside one layer
        (
            "contract/spec.py",
            "tabrepro.contract.table",
            "No cycles between the modules or subpackages of one package",
            "No cycles are allowed in tabrepro.contract.",
        ),
        # two independent siblings of one layer (io | config)
        (
            "io/raw.py",
            "tabrepro.config.params",
            "Layers: a package imports only the layers below it",
            "tabrepro.io.raw -> tabrepro.config.params",
        ),
        # feed.py is imported by check.py (through distributed.py too); importing check back, lazily, is a cycle
        (
            "monitoring/feed.py",
            "tabrepro.monitoring.check",
            "No cycles between the modules or subpackages of one package",
            "No cycles are allowed in tabrepro.monitoring.",
        ),
        # one stage importing another
        (
            "stages/train.py",
            "tabrepro.stages.prepare",
            "Stages never import each other",
            "tabrepro.stages.train -> tabrepro.stages.prepare",
        ),
    ],
)
def test_a_planted_import_breaks_its_contract_and_only_it(
    tmp_path: Path, where: str, module: str, contract: str, named: str
) -> None:
    root = _copy_tree(tmp_path)
    _plant_lazy_import(root, where, module)
    result = _lint_imports(root)
    assert result.returncode == 1, result.stdout + result.stderr
    assert _broken(result.stdout) == [contract], result.stdout
    assert named in result.stdout


def test_monitoring_reaching_up_into_batch_breaks_both_the_layers_and_the_cycles(tmp_path: Path) -> None:
    """What was untangled in issue 22 (monitoring read its tables through batch, which imports monitoring): an
    upward import and, batch importing monitoring, a cycle; neither is ignored any more."""
    root = _copy_tree(tmp_path)
    _plant_lazy_import(root, "monitoring/inputs.py", "tabrepro.batch.tables")
    result = _lint_imports(root)
    assert result.returncode == 1, result.stdout + result.stderr
    assert _broken(result.stdout) == [
        "Layers: a package imports only the layers below it",
        "No cycles between the modules or subpackages of one package",
    ], result.stdout
    assert "tabrepro.monitoring.inputs -> tabrepro.batch.tables" in result.stdout
    assert "No cycles are allowed in tabrepro." in result.stdout


def test_a_subpackage_without_a_layer_fails(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    (root / "src" / "tabrepro" / "newcomer").mkdir()
    (root / "src" / "tabrepro" / "newcomer" / "__init__.py").write_text('"""Not in the layer table yet."""\n')
    result = _lint_imports(root)
    assert result.returncode == 1, result.stdout + result.stderr
    assert _broken(result.stdout) == ["Layers: a package imports only the layers below it"], result.stdout
    assert "tabrepro.newcomer" in result.stdout
