"""The suite's markers by cost, applied at collection (``tests/conftest.py``), so a new test is marked by where it
lives and what it uses, not by remembering to mark it.

- ``unit`` / ``integration`` / ``e2e``: the folder under ``tests/``.
- ``postgres``: uses the session's PostgreSQL (the ``postgres_server`` fixture or ``tests/support/postgres.py``),
  or starts one itself (``NEEDS`` below).
- ``dask``: its module uses Dask (``dask`` or ``distributed``: a ``LocalCluster``, a ``Client``, Dask frames).
- ``service``: its module starts a real ``bentoml serve`` (``tests/support/local_serve.py``).
- ``slow``: a test, or a module's tests and set-up together, over about 20 s on an idle 2-core machine (``SLOW``
  below), and every e2e test (each runs the real dvc CLI; the first one in a session reproduces the pipeline).
  ``make test-fast`` leaves these out, with ``postgres``, ``dask`` and ``service``; ``make test`` runs them all.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

import pytest

LAYERS = ("unit", "integration", "e2e")
# A module (path) or one test (node id without parameters). No single unit or integration test passes 20 s on an
# idle machine (the CI log's --durations, 2026-12-07: at most 14 s); these modules do as a whole (a run of the whole
# suite with --junitxml, summed per module): stage chains with a search, bento builds, notebook kernels, tuning, and
# dozens of CLI subprocesses (about 2 s each).
SLOW = frozenset(
    {
        "tests/integration/test_bento_reproducible.py",
        "tests/integration/test_bento_store.py",
        "tests/integration/test_cli_errors.py",
        "tests/integration/test_drift.py",
        "tests/integration/test_model_choice.py",
        "tests/integration/test_no_secret_in_output.py",
        "tests/integration/test_notebooks.py",
        "tests/integration/test_odd_files.py",
        "tests/integration/test_odd_files_fuzz.py",
        "tests/integration/test_stages.py",
        "tests/integration/test_tune_workers.py",
    }
)
# What a test (node id) or a module (path) needs that its imports do not show: it starts the engine from a README
# block or from a script run under strace.
NEEDS: dict[str, set[str]] = {
    "tests/e2e/test_readme_run.py::test_postgresql_started_as_written": {"postgres"},
    "tests/integration/test_no_phone_home.py": {"service"},
}


def apply_marks(items: Iterable[pytest.Item], root: Path) -> None:
    """Add the layer, needs and cost markers to each collected test."""
    for item in items:
        for name in _marks(item, root):
            item.add_marker(name)


def _marks(item: pytest.Item, root: Path) -> set[str]:
    path = Path(str(item.path)).resolve()
    rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.as_posix()
    parts = rel.split("/")
    marks = {parts[1]} if len(parts) > 2 and parts[0] == "tests" and parts[1] in LAYERS else set()
    module = getattr(item, "module", None)
    used = _used_modules(module) if module is not None else set()
    if "postgres_server" in getattr(item, "fixturenames", ()) or "tests.support.postgres" in used:
        marks.add("postgres")
    if used & {"dask", "distributed"}:
        marks.add("dask")
    if "tests.support.local_serve" in used:
        marks.add("service")
    base = item.nodeid.split("[")[0]
    marks |= NEEDS.get(rel, set()) | NEEDS.get(base, set())
    if "e2e" in marks or rel in SLOW or base in SLOW:
        marks.add("slow")
    return marks


def _used_modules(module: ModuleType) -> set[str]:
    """The packages and support modules whose objects ``module`` holds at top level (its imports)."""
    used: set[str] = set()
    for value in vars(module).values():
        name = value.__name__ if inspect.ismodule(value) else getattr(value, "__module__", None)
        if not isinstance(name, str) or value is module:
            continue
        used.add(name.split(".")[0])
        if name.startswith("tests.support."):
            used.add(name)
    return used
