"""The markers of tests/support/marks.py land where they should: by folder, and by what a test uses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO

FILES = {
    "tests/unit/test_study_storage.py": {"unit"},  # PostgreSQL URLs but no server: not ``postgres``
    "tests/integration/test_tune_postgres.py": {"integration", "postgres"},
    "tests/integration/test_serving.py": {"integration", "service"},
    "tests/integration/test_dask_training.py": {"integration", "dask"},
}
MARKS = {"unit", "integration", "e2e", "postgres", "dask", "service", "slow"}
# Collect in a fresh interpreter (this session's items are whatever was asked for) and print each file's markers.
COLLECT = textwrap.dedent(
    """
    import json, sys
    import pytest

    class Marks:
        found = {}
        def pytest_collection_finish(self, session):
            for item in session.items:
                names = {m.name for m in item.iter_markers()}
                self.found.setdefault(item.nodeid.split("::")[0], set()).update(names)

    marks = Marks()
    pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", *sys.argv[1:]], plugins=[marks])
    print("MARKS " + json.dumps({f: sorted(n) for f, n in marks.found.items()}))
    """
)


@pytest.fixture(scope="module")
def collected() -> dict[str, set[str]]:
    command = [sys.executable, "-c", COLLECT, *FILES]
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}  # no -n, no --durations from the caller
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    line = next((x for x in done.stdout.splitlines() if x.startswith("MARKS ")), None)
    assert line is not None, done.stdout + done.stderr
    return {f: set(names) & MARKS for f, names in json.loads(line.removeprefix("MARKS ")).items()}


@pytest.mark.parametrize("path", FILES)
def test_a_file_is_marked_by_its_folder_and_what_it_uses(collected, path):
    assert collected[path] == FILES[path]


def test_this_test_is_marked_integration(request):
    assert request.node.get_closest_marker("integration") is not None
    assert request.node.get_closest_marker("unit") is None
