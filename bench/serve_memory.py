"""Worker memory (RSS) of the running service: at rest, after the largest request it accepts, after oversized ones,
and after 10,000 mixed bad requests.

Run after `make repro`:  .venv/bin/python bench/serve_memory.py [--bad 10000] [--serving-dir DIR]

Starts `bentoml serve` (one worker) on 127.0.0.1 and reads the worker's RSS (psutil) after each step: the baseline
after one warm-up request; one request of ``serve.limits.max_records`` records (the largest accepted); bodies over
the byte limit (by Content-Length, and streamed); then ``--bad`` requests cycling through malformed JSON, wrong
types, unknown fields, long ids, wrong content types and unknown paths. Prints a table in MB; goal: bounded, and
back near the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test harness lives in tests/support

from tabrepro.artefacts import ServeParams
from tabrepro.config.params import PathsParams, load_params, read_section
from tabrepro.contract.spec import load_contract
from tests.support.local_serve import start_server, stop_server

JSON = {"content-type": "application/json"}


def worker_rss_mb(proc: object) -> float:
    root = psutil.Process(proc.pid)  # type: ignore[attr-defined]
    workers = [p for p in root.children(recursive=True) if "_bentoml_impl.worker" in " ".join(p.cmdline())]
    return sum(p.memory_info().rss for p in workers) / 2**20


def bad_requests(record: dict, key: str | None, n: int) -> Iterator[tuple[str, str, dict, bytes]]:
    """``n`` bad requests of eight kinds, in turn: (method, path, headers, body)."""
    kinds = [
        ("POST", "/predict", JSON, b'{"records": [{"tenure": '),
        ("POST", "/predict", JSON, json.dumps({"records": [{**record, "tenure": [1, {"a": None}]}]}).encode()),
        ("POST", "/predict", JSON, json.dumps({"records": [{**record, "Contrct": "x" * 1000}]}).encode()),
        ("POST", "/predict", JSON, json.dumps({"records": [{**record, (key or "id"): "z" * 5000}]}).encode()),
        ("POST", "/predict", {"content-type": "text/plain"}, json.dumps({"records": [record]}).encode()),
        ("POST", "/predict", {"content-type": "multipart/form-data"}, b"--x\r\n"),
        ("POST", "/predict", JSON, json.dumps({"records": [record], "extra": 1}).encode()),
        ("GET", "/no-such-path-{n}", {}, b""),
    ]
    for n_request in range(n):
        method, path, headers, body = kinds[n_request % len(kinds)]
        yield method, path.format(n=n_request), headers, body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bad", type=int, default=10_000)
    parser.add_argument("--serving-dir", default=None, help="default: paths.serving of params.yaml")
    args = parser.parse_args()
    params = load_params()
    paths, contract = read_section(params, "paths", PathsParams), load_contract(params["data"])
    limits = read_section(params, "serve", ServeParams).limits
    raw = Path(contract.source).read_text().splitlines()
    header, first = raw[0].split(","), raw[1].split(",")
    record = {k: v for k, v in zip(header, first, strict=True) if k != contract.target.column}
    key = contract.id_column
    biggest = [{**record, key: f"{record[key]}-{i}"} if key else record for i in range(limits.max_records)]
    home = os.environ.get("BENTOML_HOME", Path.cwd() / ".bentoml")
    proc, url = start_server(args.serving_dir or paths.serving, bentoml_home=home, env={"TABREPRO_WORKERS": "1"})
    rows = []
    try:
        client = httpx.Client(base_url=url, timeout=120)
        assert client.post("/predict", json={"records": [record]}).status_code == 200
        rows.append(("baseline (after one request)", "200", worker_rss_mb(proc)))
        body = json.dumps({"records": biggest}).encode()
        status = client.post("/predict", content=body, headers=JSON).status_code
        rows.append(
            (
                f"after one request of {limits.max_records:,} records ({len(body) / 2**20:.1f} MB)",
                str(status),
                worker_rss_mb(proc),
            )
        )
        over = b'{"records": ["' + b"x" * (limits.max_body_bytes + 1) + b'"]}'
        statuses = [client.post("/predict", content=over, headers=JSON).status_code]

        def streamed() -> Iterator[bytes]:
            for _ in range(limits.max_body_bytes // 2**20 * 4):
                yield b" " * 2**20

        statuses.append(client.post("/predict", content=streamed(), headers=JSON).status_code)
        rows.append(
            (
                f"after 2 bodies over {limits.max_body_bytes / 2**20:.0f} MB (declared, streamed)",
                "/".join(map(str, statuses)),
                worker_rss_mb(proc),
            )
        )
        counts: Counter[int] = Counter()
        for n, (method, path, headers, content) in enumerate(bad_requests(record, key, args.bad), start=1):
            counts[client.request(method, path, content=content, headers=headers).status_code] += 1
            if n in (args.bad // 4, args.bad // 2, args.bad):  # growth that keeps going would show here
                shown = ", ".join(f"{k}: {v:,}" for k, v in sorted(counts.items()))
                rows.append((f"after {n:,} mixed bad requests", shown, worker_rss_mb(proc)))
        metrics = len(client.get("/metrics").content)
        alive = client.post("/predict", json={"records": [record]}).status_code
    finally:
        log = stop_server(proc)
    print("| step | status | worker RSS MB |\n|---|---|---|")
    for step, status, rss in rows:
        print(f"| {step} | {status} | {rss:.0f} |")
    print(f"\n/metrics after the run: {metrics / 1024:.0f} KB; a good request after it: HTTP {alive}")
    print(f"server log: {len(log) / 1024:.0f} KB, {log.count('Traceback')} tracebacks")


if __name__ == "__main__":
    main()
