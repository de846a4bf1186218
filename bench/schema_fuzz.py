"""schemathesis over the service's own OpenAPI document: every operation of ``/docs.json``, cases generated from the
schema (valid, and invalid in the negative mode), each answer checked with ``not_a_server_error`` and
``response_schema_conformance`` (the answer, its status and body, is what the document says).

Run after `make repro`:  .venv/bin/python bench/schema_fuzz.py [--cases 5000] [--seed 0] [--url URL]

Without ``--url`` it starts `bentoml serve` of ``paths.serving`` on 127.0.0.1 (the test launcher). Prints the
number of cases by operation and mode, the answers by status and every failure; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test harness lives in tests/support

CHECKS = [not_a_server_error, response_schema_conformance]
# the cases go to POST /predict, half valid and half not; a GET operation without parameters has one case to offer


def schema_fuzz(url: str, *, cases: int, seed_value: int = 0) -> dict[str, Any]:
    """Run about ``cases`` cases over ``url``'s ``/docs.json``; the counts and the failures (text)."""
    schema = schemathesis.openapi.from_url(f"{url}/docs.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    counts: Counter[str] = Counter()
    failures: list[str] = []
    session = requests.Session()
    for operation in operations:
        predict = operation.path == "/predict"
        modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE] if predict else [GenerationMode.POSITIVE]
        for mode in modes:
            n = -(-cases // 2) if predict else 1
            _run(operation, mode, n, url, session, seed_value, counts, failures)
    return {"counts": counts, "failures": failures}


def _run(
    operation: Any,
    mode: GenerationMode,
    n: int,
    url: str,
    session: requests.Session,
    seed_value: int,
    counts: Counter[str],
    failures: list[str],
) -> None:
    @seed(seed_value)
    @settings(
        max_examples=n,
        phases=[Phase.generate],
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        counts[f"{operation.method.upper()} {operation.path} {mode.value}"] += 1
        try:
            response = case.call_and_validate(base_url=url, session=session, checks=CHECKS, timeout=60)
            counts[f"HTTP {response.status_code}"] += 1
        except (Exception, FailureGroup) as exc:  # a check's failure (a FailureGroup is a BaseExceptionGroup)
            counts["failed"] += 1
            failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {_first_lines(exc)}")

    check()


def _first_lines(exc: BaseException) -> str:
    """The failure's title and first lines (schemathesis repeats the whole schema in its message)."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return " | ".join(lines[:4])[:600]


def main() -> None:
    from tabrepro.config.params import PathsParams, load_params, read_section
    from tests.support.local_serve import start_server, stop_server

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--url", default=None)
    args = parser.parse_args()
    proc = None
    url = args.url
    if url is None:
        serving = read_section(load_params(), "paths", PathsParams).serving
        proc, url = start_server(serving, bentoml_home=os.environ.get("BENTOML_HOME", Path.cwd() / ".bentoml"))
    try:
        result = schema_fuzz(url, cases=args.cases, seed_value=args.seed)
    finally:
        if proc is not None:
            stop_server(proc)
    counts = result["counts"]
    total = sum(v for k, v in counts.items() if k.startswith(("GET", "POST")))
    for key, value in sorted(counts.items()):
        print(f"{key}: {value:,}")
    print(f"cases: {total:,}; failures: {len(result['failures'])}")
    for failure in result["failures"][:20]:
        print("-" * 60 + "\n" + failure)
    raise SystemExit(1 if result["failures"] else 0)


if __name__ == "__main__":
    main()
