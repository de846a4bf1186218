"""The import graph of ``src/tabrepro``, read from the source (AST), not by importing anything.

Used by the architecture tests: the import contracts between subpackages and the check that every stage in
``dvc.yaml`` depends on the code it imports.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def module_path(name: str, *, src: Path = SRC) -> Path | None:
    """The file of a module or package of ``src``, or None if ``name`` is not one (e.g. a class)."""
    base = src.joinpath(*name.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return base / "__init__.py" if (base / "__init__.py").is_file() else None


def all_modules(*, src: Path = SRC, package: str = "tabrepro") -> list[str]:
    root = src / package
    names = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(src).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


@cache
def direct_imports(name: str, *, src: Path = SRC) -> frozenset[str]:
    """Every ``tabrepro`` module ``name`` imports, at any depth of its body (lazy imports count)."""
    path = module_path(name, src=src)
    if path is None:
        return frozenset()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return frozenset(m for m in found if m.split(".")[0] == "tabrepro" and module_path(m, src=src))


def closure(start: str, *, src: Path = SRC) -> set[str]:
    """``start`` and every module it imports, transitively, with the packages (``__init__``) on the way."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen or module_path(name, src=src) is None:
            continue
        seen.add(name)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        todo += direct_imports(name, src=src)
    return seen
