"""The architecture holds itself: import contracts between subsystems, and dvc.yaml deps that cover the code.

Both are computed from the source (AST), so a new import that breaks a boundary, or a stage that starts
importing a module its ``dvc.yaml`` entry does not list, fails here rather than in review.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.support.imports import SRC, all_modules, closure, direct_imports

ROOT = SRC.parent
FOUNDATION = ("tabrepro.errors", "tabrepro.artefacts", "tabrepro.contract")
# subsystem -> what it may import besides itself (None: anything but the stages)
ALLOWED: dict[str, tuple[str, ...]] = {
    "tabrepro.errors": (),
    "tabrepro.artefacts": ("tabrepro.errors",),
    "tabrepro.contract": ("tabrepro.errors", "tabrepro.artefacts"),
    "tabrepro.onnxrt": FOUNDATION,  # ONNX Runtime sessions and feeds, shared by training and serving
    "tabrepro.serving": (*FOUNDATION, "tabrepro.onnxrt"),  # so the bento carries only these
    "tabrepro.io": FOUNDATION,
    "tabrepro.config": FOUNDATION,
    # outcomes reads labels and predictions and judges them: never trains, serves or runs a stage
    "tabrepro.outcomes": (
        *FOUNDATION,
        "tabrepro.io",
        "tabrepro.config",
        "tabrepro.evaluation",
        "tabrepro.batch",
        "tabrepro.monitoring",
    ),
}


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def contract_violations(*, src: Path = SRC) -> list[str]:
    """Every import that breaks a contract, as 'importer -> imported: why'."""
    problems = []
    for module in all_modules(src=src):
        for imported in direct_imports(module, src=src):
            if imported == "tabrepro":
                continue
            in_stages = _within(imported, "tabrepro.stages")
            if in_stages and not _within(module, "tabrepro.stages"):
                problems.append(f"{module} -> {imported}: nothing imports a stage")
            elif in_stages and imported != "tabrepro.stages" and module != imported:
                problems.append(f"{module} -> {imported}: stages never import each other")
            for package, allowed in ALLOWED.items():
                if _within(module, package) and not any(_within(imported, p) for p in (package, *allowed)):
                    problems.append(f"{module} -> {imported}: {package} may import only {list(allowed)}")
    return problems


def test_import_contracts_hold() -> None:
    assert contract_violations() == []


@pytest.mark.parametrize(
    ("where", "source", "why"),
    [
        ("serving/runtime.py", "from tabrepro.training.modeling import load_model\n", "may import only"),
        ("stages/train.py", "from tabrepro.stages.prepare import clean_table\n", "never import each other"),
        ("batch/scoring.py", "import tabrepro.stages.package\n", "nothing imports a stage"),
        ("contract/spec.py", "from tabrepro.config.params import ConfigError\n", "may import only"),
        ("outcomes/join.py", "from tabrepro.training.modeling import build_pipeline\n", "may import only"),
    ],
)
def test_import_contracts_fail_on_a_violation(tmp_path: Path, where: str, source: str, why: str) -> None:
    import shutil

    shutil.copytree(SRC / "tabrepro", tmp_path / "tabrepro", ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "tabrepro" / where
    target.write_text(source + target.read_text(encoding="utf-8"), encoding="utf-8")
    problems = contract_violations(src=tmp_path)
    assert problems
    assert all(why in p for p in problems), problems


def uncovered_modules(stages: dict, *, src: Path = SRC) -> list[str]:
    """For each ``python -m tabrepro...`` stage, the modules it imports that no declared dependency covers."""
    misses = []
    for name, stage in stages.items():
        cmd = stage["cmd"] if isinstance(stage["cmd"], str) else " ".join(stage["cmd"])
        if "-m tabrepro" not in cmd:
            continue
        start = cmd.split("-m ", 1)[1].split()[0]
        deps = [str(d if isinstance(d, str) else next(iter(d))).rstrip("/") for d in stage.get("deps", [])]
        for module in sorted(closure(start, src=src)):
            path = str(
                (src.joinpath(*module.split(".")).with_suffix(".py"))
                if src.joinpath(*module.split(".")).with_suffix(".py").is_file()
                else src.joinpath(*module.split("."), "__init__.py")
            )
            relative = str(Path(path).relative_to(src.parent))
            if not any(relative == d or relative.startswith(d + "/") for d in deps):
                misses.append(f"{name}: {relative}")
    return misses


def _stages() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def test_every_stage_depends_on_the_code_it_imports() -> None:
    assert uncovered_modules(_stages()) == []


def _code_deps() -> list[tuple[str, str]]:
    return [(n, d) for n, s in _stages().items() for d in s.get("deps", []) if str(d).startswith("src/")]


@pytest.mark.parametrize(("stage", "dep"), _code_deps())
def test_removing_a_code_dependency_is_caught(stage: str, dep: str) -> None:
    stages = _stages()
    stages[stage]["deps"] = [d for d in stages[stage]["deps"] if d != dep]
    assert any(m.startswith(f"{stage}: ") for m in uncovered_modules(stages)), f"{stage} does not need {dep}"


def test_the_bento_carries_exactly_what_the_service_imports() -> None:
    from tabrepro.packaging.store import BENTO_CODE

    needed = closure("tabrepro.serving.service")
    parts = {p.removesuffix(".py") for p in BENTO_CODE}
    carried = {"tabrepro" if p == "__init__" else f"tabrepro.{p}" for p in parts}

    def covered(module: str, by: str) -> bool:
        return module == by or (by != "tabrepro" and module.startswith(by + "."))

    assert sorted(m for m in needed if not any(covered(m, c) for c in carried)) == []
    assert sorted(c for c in carried if not any(covered(m, c) for m in needed)) == []
