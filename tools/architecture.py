"""Generate the diagrams of docs/architecture.md from the files that define them, or check they are current.

- the layers: pyproject.toml's `[tool.importlinter]` contracts (the `layers` contract's table, its ignored
  imports, and the name of every other contract);
- the stage graph: dvc.yaml, with `${...}` resolved from params.yaml: an edge from a stage to another for each
  output of the first that the second depends on; inputs that no stage writes (except code) are drawn as data.

Each goes between `<!-- generated:NAME -->` and `<!-- /generated:NAME -->` in the document. Exit 0 when written
(or, with --check, when current), 1 when --check finds the document stale (a diff is printed), 2 when a file is
missing or malformed.

    python tools/architecture.py           # rewrite the generated parts of docs/architecture.md
    python tools/architecture.py --check   # make lint: fail if they differ from what would be generated
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DOC = Path("docs/architecture.md")
_TEMPLATE = re.compile(r"\$\{\s*([\w.-]+)\s*\}")
_CODE = ("src/", "tests/", "bench/", "tools/")


class ArchitectureError(Exception):
    """A source file is missing or not in the expected shape (exit 2)."""


def layers_diagram(importlinter: dict[str, Any]) -> str:
    """Markdown: a Mermaid chart of the layers (each may import those below it) and the contracts beside it."""
    contracts = importlinter.get("contracts", [])
    layered = [c for c in contracts if c.get("type") == "layers"]
    if not layered:
        raise ArchitectureError("pyproject.toml: [tool.importlinter] has no contract of type 'layers'")
    contract = layered[0]
    container = ", ".join(contract.get("containers", [])) or importlinter.get("root_package", "")
    lines = ["```mermaid", "flowchart TD"]
    for i, line in enumerate(contract["layers"]):
        lines.append(f'  L{i}["{_label(" ".join(line.split()))}"]')
    lines += [f"  L{i} --> L{i + 1}" for i in range(len(contract["layers"]) - 1)]
    lines += ["```", "", f"Layers of `{container}`, top to bottom: a package may import only the layers below it."]
    lines.append("Names joined by `|` must not import each other (`:` would let them); a name in parentheses may be")
    lines.append("absent (a module arriving with another branch). Imports the contract still ignores:")
    ignored = [f"- `{i}`" for i in contract.get("ignore_imports", [])] or ["- none"]
    lines += ["", *ignored]
    lines += ["", "The other import contracts (`lint-imports`):", ""]
    lines += [f"- `{c.get('id', '?')}` ({c.get('type')}): {c.get('name', '')}" for c in contracts if c is not contract]
    return "\n".join(lines)


def _label(text: str) -> str:
    return text.replace('"', "#quot;")


def _lookup(params: dict[str, Any], key: str) -> Any:
    value: Any = params
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise ArchitectureError(f"dvc.yaml: ${{{key}}} is not in params.yaml")
        value = value[part]
    return value


def resolve(text: str, params: dict[str, Any]) -> str:
    """`${paths.model}/x` -> `models/model/x`, as DVC templates dvc.yaml from params.yaml."""
    return _TEMPLATE.sub(lambda m: str(_lookup(params, m.group(1))), text)


def _paths(entries: list[Any] | None, params: dict[str, Any]) -> list[str]:
    """The paths of a deps / outs / metrics / plots list (entries are strings or {path: options})."""
    found = []
    for entry in entries or []:
        for path in entry if isinstance(entry, dict) else [entry]:
            found.append(resolve(str(path), params).rstrip("/"))
    return found


def stage_io(dvc: dict[str, Any], params: dict[str, Any]) -> dict[str, tuple[list[str], list[str]]]:
    """Each stage's (deps, outs), paths resolved; a foreach / matrix stage is read from its `do` body."""
    stages = dvc.get("stages")
    if not isinstance(stages, dict) or not stages:
        raise ArchitectureError("dvc.yaml: no stages")
    io = {}
    for name, stage in stages.items():
        body = stage.get("do", stage)
        outs = [p for key in ("outs", "metrics", "plots") for p in _paths(body.get(key), params)]
        io[name] = (_paths(body.get("deps"), params), outs)
    return io


def _covers(out: str, dep: str) -> bool:
    return dep == out or dep.startswith(out + "/") or out.startswith(dep + "/")


def stage_edges(io: dict[str, tuple[list[str], list[str]]]) -> dict[tuple[str, str], list[str]]:
    """(producer, consumer) -> the consumer's deps that the producer writes, in dvc.yaml's order."""
    edges: dict[tuple[str, str], list[str]] = {}
    for consumer, (deps, _) in io.items():
        for dep in deps:
            for producer, (_, outs) in io.items():
                if producer != consumer and any(_covers(out, dep) for out in outs):
                    edges.setdefault((producer, consumer), []).append(dep)
    return edges


def stages_diagram(dvc: dict[str, Any], params: dict[str, Any]) -> str:
    """Markdown: a Mermaid chart of the stages, the data between them, and the inputs no stage writes."""
    io = stage_io(dvc, params)
    edges = stage_edges(io)
    written = {out for _, outs in io.values() for out in outs}
    sources: dict[str, list[str]] = {}
    for consumer, (deps, _) in io.items():
        for dep in deps:
            if not dep.startswith(_CODE) and not any(_covers(out, dep) for out in written):
                sources.setdefault(dep, []).append(consumer)
    lines = ["```mermaid", "flowchart LR"]
    lines += [f'  {_node(name)}["{name}"]' for name in io]
    for i, (path, consumers) in enumerate(sources.items()):
        lines.append(f'  in{i}[("{_label(path)}")]')
        lines += [f"  in{i} --> {_node(c)}" for c in consumers]
    for (producer, consumer), paths in edges.items():
        lines.append(f'  {_node(producer)} -->|"{_label(", ".join(paths))}"| {_node(consumer)}')
    lines += ["```", "", "Stages are boxes, inputs no stage writes are cylinders (code dependencies are left out;"]
    lines.append("dvc.yaml lists them per stage); each arrow carries the paths one stage writes and the next reads.")
    return "\n".join(lines)


def _node(name: str) -> str:
    return "s_" + re.sub(r"\W", "_", name)


def generate(root: Path) -> dict[str, str]:
    """The generated sections of the document, by marker name, from the files under `root`."""
    try:
        pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
        dvc = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))
        params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, tomllib.TOMLDecodeError, yaml.YAMLError) as e:
        raise ArchitectureError(f"cannot read the sources of the diagrams: {e}") from e
    importlinter = pyproject.get("tool", {}).get("importlinter")
    if not importlinter:
        raise ArchitectureError("pyproject.toml: no [tool.importlinter] section")
    return {"layers": layers_diagram(importlinter), "stages": stages_diagram(dvc, params)}


def render(document: str, sections: dict[str, str]) -> str:
    """The document with each `<!-- generated:NAME -->` ... `<!-- /generated:NAME -->` block replaced."""
    for name, body in sections.items():
        pattern = re.compile(rf"(<!-- generated:{name} -->\n).*?(<!-- /generated:{name} -->)", re.DOTALL)
        match = pattern.search(document)
        if not match:
            raise ArchitectureError(f"{DOC}: no <!-- generated:{name} --> ... <!-- /generated:{name} --> markers")
        document = f"{document[: match.end(1)]}{body}\n{document[match.start(2) :]}"
    return document


def main(argv: list[str] | None = None, *, root: Path = ROOT) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the document differs from the sources")
    args = parser.parse_args(argv)
    doc = root / DOC
    try:
        current = doc.read_text(encoding="utf-8")
        wanted = render(current, generate(root))
    except (OSError, ArchitectureError) as e:
        print(f"architecture: {e}", file=sys.stderr)
        return 2
    if wanted == current:
        return 0
    if args.check:
        diff = difflib.unified_diff(current.splitlines(), wanted.splitlines(), str(DOC), "generated", lineterm="")
        print("\n".join(diff))
        print(f"architecture: {DOC} is stale; run `python tools/architecture.py` and commit it", file=sys.stderr)
        return 1
    doc.write_text(wanted, encoding="utf-8")
    print(f"architecture: {DOC} written", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
