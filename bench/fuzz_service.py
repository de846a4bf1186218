"""Fuzz the running service with requests generated from the data contract: valid, near-valid and hostile.

Run after `make repro`:  .venv/bin/python bench/fuzz_service.py [--cases 5000] [--seed 0] [--url URL]

Without ``--url`` it starts `bentoml serve` of ``paths.serving`` on 127.0.0.1 (the test launcher). Hypothesis
strategies, seeded, no shrinking: valid records (each feature drawn from its type, levels and range, as a JSON value
or as the raw text a file would hold), near-valid ones (one field out of range, of another JSON type, an unknown
level, too long, missing or unknown), hostile bodies (any JSON, broken JSON, deep nesting, a body that is not an
object, too many records, a huge body) and wrong content types. Prints the counts by status class; exits 1 on any
5xx or if the server stops answering.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test harness lives in tests/support

from tabrepro.artefacts import LimitsParams
from tabrepro.contract.spec import DataContract, FeatureSpec

JSON = "application/json"
Case = tuple[str | None, bytes]  # (Content-Type, body)
_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
ANY_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def feature_values(spec: FeatureSpec) -> st.SearchStrategy[Any]:
    """Values the contract accepts for ``spec``: as JSON numbers or strings, and null where it may be missing."""
    if spec.type == "numeric":
        low = spec.min if spec.min is not None else -1e9
        high = spec.max if spec.max is not None else 1e9
        number = (
            st.integers(int(low), int(high))
            if spec.integer
            else st.floats(low, high, allow_nan=False, allow_infinity=False)
        )
        values = number | number.map(str)  # a file's raw text is valid too
    else:
        tokens = list(spec.values or ()) if spec.type == "categorical" else [*spec.true_values, *spec.false_values]
        values = st.sampled_from(tokens)
    return values | st.none() if spec.nullable else values


def valid_records(contract: DataContract) -> st.SearchStrategy[dict[str, Any]]:
    fields = {name: feature_values(spec) for name, spec in contract.features.items()}
    if contract.id_column is None:
        return st.fixed_dictionaries(fields)
    ident = st.text(st.characters(codec="utf-8", categories=("L", "N")), min_size=1, max_size=24)
    return st.fixed_dictionaries(fields, optional={contract.id_column: ident})


def _breaks(spec: FeatureSpec) -> st.SearchStrategy[Any]:
    """A value one step off what ``spec`` accepts, or of another kind altogether."""
    wrong = [ANY_JSON, st.text(min_size=300, max_size=3000), st.sampled_from([1e308, -1e308, 10**40, "NaN", "inf"])]
    if spec.type == "numeric":
        if spec.max is not None:
            wrong.append(st.floats(spec.max + 1, spec.max + 1e6, allow_nan=False))
        if spec.min is not None:
            wrong.append(st.floats(spec.min - 1e6, spec.min - 1, allow_nan=False))
        if spec.integer:
            wrong.append(st.floats(0.01, 0.99).map(lambda f: (spec.min or 0) + f))
    else:
        wrong.append(st.text(max_size=12))  # almost surely not a level
    return st.one_of(wrong)


@st.composite
def near_valid_records(draw: st.DrawFn, contract: DataContract) -> dict[str, Any]:
    record = dict(draw(valid_records(contract)))
    name = draw(st.sampled_from(sorted(contract.features)))
    how = draw(st.sampled_from(["break", "drop", "extra", "long_id"]))
    if how == "break":
        record[name] = draw(_breaks(contract.features[name]))
    elif how == "drop":
        record.pop(name)
    elif how == "extra":
        record[draw(st.text(min_size=1, max_size=40))] = draw(ANY_JSON)
    elif contract.id_column is not None:
        record[contract.id_column] = draw(st.text(min_size=257, max_size=2000) | ANY_JSON)
    return record


def _body(payload: Any) -> bytes:
    return json.dumps(payload).encode()


@st.composite
def hostile_cases(draw: st.DrawFn, contract: DataContract, limits: LimitsParams) -> Case:
    good = valid_records(contract)
    kind = draw(st.integers(0, 8))
    if kind == 0:  # any JSON at all
        return JSON, _body(draw(ANY_JSON))
    if kind == 1:  # broken JSON
        return JSON, draw(st.binary(max_size=200) | st.sampled_from([b'{"records": [', b"{", b"", b"\xff\xfe", b"nul"]))
    if kind == 2:  # deep nesting
        depth = draw(st.integers(100, 20_000))
        return JSON, b'{"records": [' + b"[" * depth + b"]" * depth + b"]}"
    if kind == 3:  # records that are not a list of objects, or an unknown top-level key
        return JSON, _body(draw(st.sampled_from([{"records": "x"}, {"records": {}}, {"x": 1}, [], {"records": []}])))
    if kind == 4:
        return JSON, _body({"records": [draw(good)], draw(st.text(min_size=1, max_size=10)): 1})
    if kind == 5:  # too many records
        return JSON, _body({"records": [draw(good)] * (limits.max_records + 1)})
    if kind == 6:  # a body over the byte limit
        return JSON, b'{"records": ["' + b"x" * (limits.max_body_bytes + 1) + b'"]}'
    if kind == 7:  # a good body under a wrong content type
        content_type = draw(
            st.sampled_from(["text/plain", "multipart/form-data", "application/x-www-form-urlencoded", "", "*/*"])
        )
        return content_type or None, _body({"records": [draw(good)]})
    return "multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data; name=records\r\n\r\n[]\r\n--x--"


def cases(contract: DataContract, limits: LimitsParams) -> st.SearchStrategy[Case]:
    """Half near-valid records (in batches of 1 to 5 with valid ones), a quarter valid, a quarter hostile."""
    good, near = valid_records(contract), near_valid_records(contract)
    batch = st.lists(st.one_of(good, near), min_size=1, max_size=5).map(lambda r: (JSON, _body({"records": r})))
    valid = st.lists(good, min_size=1, max_size=5).map(lambda r: (JSON, _body({"records": r})))
    return st.one_of(batch, batch, valid, hostile_cases(contract, limits))


def fuzz(url: str, contract: DataContract, limits: LimitsParams, *, n: int, seed_value: int) -> Counter[str]:
    """Send ``n`` generated cases to ``url``; counts by status class (``2xx`` ... ``5xx``, ``dead`` when the
    server stopped answering) and one example body of the first 5xx (key ``first_5xx``: count 0, see ``examples``)."""
    counts: Counter[str] = Counter()
    client = httpx.Client(base_url=url, timeout=60)

    @settings(
        max_examples=n,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @seed(seed_value)
    @given(case=cases(contract, limits))
    def send(case: Case) -> None:
        content_type, body = case
        headers = {"content-type": content_type} if content_type is not None else {}
        try:
            status = client.post("/predict", content=body, headers=headers).status_code
        except httpx.TransportError:
            counts["dead"] += 1
            return
        counts[f"{status // 100}xx"] += 1
        counts[str(status)] += 1
        if status >= 500 and len(FIRST_5XX) < 3:
            FIRST_5XX.append(body[:300].decode(errors="replace"))

    send()
    client.close()
    return counts


FIRST_5XX: list[str] = []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--url", default=None, help="a running service (default: start one on 127.0.0.1)")
    parser.add_argument("--serving-dir", default=None, help="what to start (default: paths.serving of params.yaml)")
    args = parser.parse_args()
    from tabrepro.artefacts import ServeParams
    from tabrepro.config.params import PathsParams, load_params, read_section
    from tabrepro.contract.spec import load_contract
    from tests.support.local_serve import start_server, stop_server

    params = load_params()
    contract, limits = load_contract(params["data"]), read_section(params, "serve", ServeParams).limits
    proc = None
    url = args.url
    if url is None:
        serving = args.serving_dir or read_section(params, "paths", PathsParams).serving
        proc, url = start_server(serving, bentoml_home=os.environ.get("BENTOML_HOME", Path.cwd() / ".bentoml"))
    try:
        counts = fuzz(url, contract, limits, n=args.cases, seed_value=args.seed)
        alive = httpx.get(f"{url}/livez", timeout=10).status_code == 200
    finally:
        if proc is not None:
            stop_server(proc)
    classes = {k: v for k, v in sorted(counts.items()) if not k[0].isdigit() or k.endswith("xx")}
    print(f"{sum(classes.values()):,} cases, seed {args.seed}: " + ", ".join(f"{k} {v:,}" for k, v in classes.items()))
    print("by status: " + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items()) if k.isdigit()))
    print(f"server alive after the run: {alive}")
    for body in FIRST_5XX:
        print(f"5xx on: {body!r}")
    if counts["5xx"] or counts["dead"] or not alive:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
