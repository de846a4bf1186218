"""What a killed worker costs, with one and with two workers: failed requests, how long queued requests waited,
and how long until the service answers again (and until the arbiter has a new worker process).

Run after `make repro`:  .venv/bin/python bench/killed_worker.py [--seconds 30] [--workers 1 2] [--serving-dir DIR]

For each worker count it starts `bentoml serve` (``TABREPRO_WORKERS``) on 127.0.0.1, sends single-record requests
at a fixed 150 req/s (the open-loop client of ``serve_load``: latencies count from each request's scheduled time,
so a stalled server shows as waiting, not as a slower client) and SIGKILLs one worker a third of the way in.
Printed per worker count: requests sent and failed (by kind), p50 / p99 / max latency of the requests scheduled
after the kill, seconds from the kill until a request sent after it is answered 200, and seconds until
a new worker process is in place. The client shares the machine's cores with the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test harness lives in tests/support

from bench.serve_load import _Connection, http_request, worker_pids

from tabrepro.config.params import PathsParams, load_params, read_section
from tabrepro.contract.spec import load_contract
from tests.support.local_serve import start_server, stop_server


async def _one(host: str, port: int, request: bytes, scheduled: float, out: list) -> None:
    loop = asyncio.get_running_loop()
    try:
        conn = _Connection(*await asyncio.open_connection(host, port))
        status = await conn.call(request)
        conn.writer.close()
        out.append((scheduled, loop.time(), str(status)))
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        out.append((scheduled, loop.time(), type(exc).__name__))


async def kill_during_load(url: str, proc: object, body: bytes, *, rate: float, seconds: float) -> dict:
    """One connection per request (a killed worker's connections die with it; a new one reaches a live worker)."""
    host, port = url.removeprefix("http://").split(":")
    loop, out, tasks = asyncio.get_running_loop(), [], []
    before = set(worker_pids(proc))
    victim, start, killed_at, replaced_at = sorted(before)[0], loop.time(), None, None
    request = http_request(host, int(port), body)
    for i in range(int(rate * seconds)):
        scheduled = start + i / rate
        await asyncio.sleep(max(0.0, scheduled - loop.time()))
        if killed_at is None and scheduled - start >= seconds / 3:
            os.kill(victim, signal.SIGKILL)
            killed_at = loop.time()
        elif killed_at is not None and replaced_at is None and i % 15 == 0:
            now = set(worker_pids(proc))
            if len(now) == len(before) and victim not in now:
                replaced_at = loop.time()
        tasks.append(asyncio.create_task(_one(host, int(port), request, scheduled, out)))
    await asyncio.gather(*tasks)
    return _summary(out, killed_at, replaced_at)


def _summary(out: list, killed_at: float, replaced_at: float | None) -> dict:
    after = [(s, done, status) for s, done, status in out if s >= killed_at]
    waits = np.array([(done - s) * 1e3 for s, done, _ in after])
    answered = [done for _, done, status in after if status == "200"]
    kinds: dict[str, int] = {}
    for _, _, status in out:
        if status != "200":
            kinds[status] = kinds.get(status, 0) + 1
    return {
        "sent": len(out),
        "failed": sum(kinds.values()),
        "kinds": kinds,
        "p50_ms": float(np.percentile(waits, 50)),
        "p99_ms": float(np.percentile(waits, 99)),
        "max_ms": float(waits.max()),
        "first_answer_s": (min(answered) - killed_at) if answered else float("nan"),
        "replaced_s": (replaced_at - killed_at) if replaced_at else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--rate", type=float, default=150)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--serving-dir", default=None, help="default: paths.serving of params.yaml")
    args = parser.parse_args()
    params = load_params()
    paths, contract = read_section(params, "paths", PathsParams), load_contract(params["data"])
    raw = Path(contract.source).read_text().splitlines()
    record = {k: v for k, v in zip(raw[0].split(","), raw[1].split(","), strict=True) if k != contract.target.column}
    body = json.dumps({"records": [record]}).encode()
    home = os.environ.get("BENTOML_HOME", Path.cwd() / ".bentoml")
    print(f"{os.cpu_count()} cores, shared by client and server; {args.rate:g} req/s for {args.seconds:g} s\n")
    print("| workers | sent | failed | after the kill: p50 / p99 / max ms | answered again | new worker |")
    print("|---|---|---|---|---|---|")
    for workers in args.workers:
        env = {"TABREPRO_WORKERS": str(workers)}
        proc, url = start_server(args.serving_dir or paths.serving, bentoml_home=home, env=env)
        try:
            deadline = time.monotonic() + 60
            while httpx.get(f"{url}/readyz", timeout=5).status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.5)
            s = asyncio.run(kill_during_load(url, proc, body, rate=args.rate, seconds=args.seconds))
        finally:
            stop_server(proc)
        kinds = f" ({', '.join(f'{k}: {v}' for k, v in sorted(s['kinds'].items()))})" if s["kinds"] else ""
        print(
            f"| {workers} | {s['sent']} | {s['failed']}{kinds} | {s['p50_ms']:.1f} / {s['p99_ms']:.0f} / "
            f"{s['max_ms']:.0f} | {s['first_answer_s']:.2f} s | {s['replaced_s']:.2f} s |"
        )


if __name__ == "__main__":
    main()
