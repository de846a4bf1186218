"""Load test of the running service on 127.0.0.1: fixed rates, the peak rate, and what a killed worker costs.

Run after `make repro`:  .venv/bin/python bench/serve_load.py [--seconds 60] [--step-seconds 10] [--workers 1 2]

For each worker count it starts `bentoml serve` (``TABREPRO_WORKERS``) on a free local port and drives it with an
open-loop client (asyncio, raw HTTP/1.1 keep-alive connections, no third-party load tool): requests leave on a fixed
schedule whatever the answers do, and each latency is measured from its scheduled time, so a stalled server shows
as latency instead of as a slower client. Scenarios: single-record requests at a fixed 150 req/s for ``--seconds``;
rising fixed rates (``--step-seconds`` each) to find the peak served with zero errors and p99 <= 10 ms; a worker
killed (SIGKILL) in the middle of a 150 req/s run (errors, p99, seconds until a new worker answers); one request of
10,000 records. The client shares the machine's cores with the server: the peak is a lower bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test harness lives in tests/support

from tabrepro.config.params import PathsParams, load_params, read_section
from tabrepro.contract.spec import load_contract
from tests.support.local_serve import start_server, stop_server

RATES = (150, 300, 450, 600, 800, 1000, 1300, 1600)


@dataclass
class Run:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    sent: int = 0
    kinds: dict[str, int] = field(default_factory=dict)  # what the errors were: an HTTP status or an exception
    seconds: float = 0.0

    def row(self, name: str) -> str:
        lat = np.array(self.latencies_ms or [np.nan])
        rate = len(self.latencies_ms) / self.seconds if self.seconds else 0.0
        p50, p99 = np.percentile(lat, 50), np.percentile(lat, 99)
        kinds = f" ({', '.join(f'{k}: {v}' for k, v in sorted(self.kinds.items()))})" if self.kinds else ""
        return f"| {name} | {rate:.0f} | {p50:.2f} | {p99:.2f} | {self.errors}{kinds} |"


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def call(self, request: bytes) -> int:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = next(
            (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")),
            0,
        )
        await self.reader.readexactly(length)
        return status


def http_request(host: str, port: int, body: bytes) -> bytes:
    head = (
        f"POST /predict HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def open_loop(host: str, port: int, body: bytes, *, rate: float, seconds: float, on_tick=None) -> Run:
    """Send ``rate`` requests a second for ``seconds``; ``on_tick(elapsed)`` is called between sends."""
    request, run, idle = http_request(host, port, body), Run(), []
    loop = asyncio.get_running_loop()

    def failed(kind: str) -> None:
        run.errors += 1
        run.kinds[kind] = run.kinds.get(kind, 0) + 1

    async def fire(scheduled: float) -> None:
        conn = None
        while idle:  # the most recently used connection still fresh (uvicorn closes one idle for 5 s)
            candidate, last_used = idle.pop()
            if loop.time() - last_used < 2.0:
                conn = candidate
                break
            candidate.writer.close()
        try:
            if conn is None:
                conn = _Connection(*await asyncio.open_connection(host, port))
            status = await conn.call(request)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            failed(type(exc).__name__)
            return
        if status != 200:
            failed(str(status))
        else:
            run.latencies_ms.append((loop.time() - scheduled) * 1e3)
        idle.append((conn, loop.time()))

    tasks, start, n = [], loop.time(), int(rate * seconds)
    for i in range(n):
        scheduled = start + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if on_tick is not None:
            on_tick(loop.time() - start)
        tasks.append(asyncio.create_task(fire(scheduled)))
        run.sent += 1
    await asyncio.gather(*tasks)
    run.seconds = loop.time() - start
    for conn, _ in idle:
        conn.writer.close()
    return run


def worker_pids(proc: psutil.Popen | object) -> list[int]:
    """The service's worker processes (BentoML's arbiter runs them as children)."""
    found = []
    for child in psutil.Process(proc.pid).children(recursive=True):  # type: ignore[attr-defined]
        try:
            if "_bentoml_impl.worker" in " ".join(child.cmdline()):
                found.append(child.pid)
        except psutil.Error:  # gone, or a zombie not yet reaped (the killed worker)
            continue
    return found


def killed_worker(url: str, proc: object, body: bytes, *, seconds: float) -> tuple[Run, float]:
    """A 150 req/s run in which one worker is SIGKILLed at a third of it; and how long until the arbiter has a new
    worker process in its place (NaN: not within the run)."""
    host, port = url.removeprefix("http://").split(":")
    before = set(worker_pids(proc))
    victim, killed_at, back_at, checked = sorted(before)[0], [0.0], [0.0], [0.0]

    def tick(elapsed: float) -> None:
        if not killed_at[0] and elapsed >= seconds / 3:
            os.kill(victim, signal.SIGKILL)
            killed_at[0] = checked[0] = time.monotonic()
        elif killed_at[0] and not back_at[0] and time.monotonic() - checked[0] >= 0.1:  # ten looks a second
            checked[0] = time.monotonic()
            now = set(worker_pids(proc))
            if len(now) == len(before) and victim not in now:
                back_at[0] = checked[0]

    run = asyncio.run(open_loop(host, int(port), body, rate=150, seconds=seconds, on_tick=tick))
    return run, (back_at[0] - killed_at[0]) if back_at[0] else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--step-seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--serving-dir", default=None, help="default: paths.serving of params.yaml")
    args = parser.parse_args()
    params = load_params()
    paths, contract = read_section(params, "paths", PathsParams), load_contract(params["data"])
    serving = args.serving_dir or paths.serving
    raw = Path(contract.source).read_text().splitlines()
    header, first = raw[0].split(","), raw[1].split(",")
    record = {k: v for k, v in zip(header, first, strict=True) if k != contract.target.column}
    key = contract.id_column
    batch = [{**record, key: f"{record[key]}-{i}"} if key else record for i in range(10_000)]  # ids are unique
    one, many = json.dumps({"records": [record]}).encode(), json.dumps({"records": batch}).encode()
    home = os.environ.get("BENTOML_HOME", Path.cwd() / ".bentoml")
    print(f"{psutil.cpu_count()} cores; client and server share them\n")
    print("| workers | scenario | requests/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|---|")
    notes = []
    for workers in args.workers:
        proc, url = start_server(serving, bentoml_home=home, env={"TABREPRO_WORKERS": str(workers)})
        try:
            if httpx.get(f"{url}/readyz", timeout=5).status_code != 200:
                raise SystemExit(f"the service is not ready:\n{stop_server(proc)}")
            host, port = url.removeprefix("http://").split(":")
            asyncio.run(open_loop(host, int(port), one, rate=100, seconds=2))  # warm-up
            fixed = asyncio.run(open_loop(host, int(port), one, rate=150, seconds=args.seconds))
            print(f"| {workers} " + fixed.row(f"fixed 150 req/s, {args.seconds} s"))
            peak = 0
            for rate in RATES:
                r = asyncio.run(open_loop(host, int(port), one, rate=rate, seconds=args.step_seconds))
                ok = r.errors == 0 and np.percentile(r.latencies_ms, 99) <= 10 and r.sent >= 0.95 * rate * r.seconds
                print(
                    f"| {workers} "
                    + r.row(f"fixed {rate} req/s, {args.step_seconds} s")
                    + ("" if ok else " (not sustained)")
                )
                if not ok:
                    break
                peak = rate
            notes.append(f"{workers} worker(s): peak rate with 0 errors and p99 <= 10 ms: {peak} req/s")
            killed, back = killed_worker(url, proc, one, seconds=30)
            print(f"| {workers} " + killed.row("150 req/s, one worker SIGKILLed at 10 s, 30 s"))
            notes.append(
                f"{workers} worker(s): a killed worker cost {killed.errors} failed requests of {killed.sent}; "
                f"a new worker process was in place {back:.1f} s after the kill"
            )
            started = time.perf_counter()
            response = httpx.post(
                f"{url}/predict", content=many, headers={"content-type": "application/json"}, timeout=120
            )
            seconds = time.perf_counter() - started
            notes.append(
                f"{workers} worker(s): one request of 10,000 records: HTTP {response.status_code}, "
                f"{seconds:.2f} s, {10_000 / seconds:,.0f} rows/s"
            )
        finally:
            stop_server(proc)
    print("\n" + "\n".join(notes))


if __name__ == "__main__":
    main()
