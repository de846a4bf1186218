"""Load test of the running service with `hey` (Debian package `hey`) at fixed rates, on 127.0.0.1 only.

Run after `make repro`:  .venv/bin/python bench/serve_load.py [--seconds 20]

Starts `bentoml serve` on a free local port, then: one client sending back-to-back single-record requests;
one client at a fixed 150 requests/s; rising fixed rates to find the peak rate served with zero errors and
p99 under 10 ms; and one request carrying 10,000 records. Prints p50/p99 latency, error counts and rows/s.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test harness lives in tests/support

from tabrepro.config.params import PathsParams, load_params, read_section
from tabrepro.contract.spec import load_contract
from tests.support.local_serve import start_server, stop_server


def _hey(url: str, body: Path, *, seconds: int, rate: int | None, clients: int = 1) -> dict[str, float]:
    cmd = ["hey", "-z", f"{seconds}s", "-c", str(clients), "-m", "POST", "-T", "application/json", "-D", str(body)]
    if rate:
        cmd += ["-q", str(rate // clients)]  # hey's -q is per client
    out = subprocess.run([*cmd, f"{url}/predict"], capture_output=True, text=True, check=True).stdout
    codes = dict(re.findall(r"\[(\d{3})\]\s+(\d+) responses", out))
    errors = sum(int(n) for code, n in codes.items() if code != "200") + len(re.findall(r"Error distribution", out))
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": float(re.search(r"50%+ in ([\d.]+) secs", out).group(1)) * 1e3,
        "p99_ms": float(re.search(r"99%+ in ([\d.]+) secs", out).group(1)) * 1e3,
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=20)
    args = parser.parse_args()
    if shutil.which("hey") is None:
        raise SystemExit("needs the `hey` load generator: apt-get install hey")
    params = load_params()
    paths, contract = read_section(params, "paths", PathsParams), load_contract(params["data"])
    raw = Path(contract.source).read_text().splitlines()
    header, first = raw[0].split(","), raw[1].split(",")
    record = {k: v for k, v in zip(header, first, strict=True) if k != contract.target.column}
    proc, url = start_server(paths.serving, bentoml_home=os.environ.get("BENTOML_HOME", Path.cwd() / ".bentoml"))
    if httpx.get(f"{url}/readyz", timeout=5).status_code != 200:
        raise SystemExit(f"the service is not ready:\n{stop_server(proc)}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            one, many = Path(tmp) / "one.json", Path(tmp) / "many.json"
            one.write_text(json.dumps({"records": [record]}))
            many.write_text(json.dumps({"records": [record] * 10_000}))
            print("| scenario | requests/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|")
            for name, rate in [("1 client, back to back", None), ("1 client, fixed 150 req/s", 150)]:
                r = _hey(url, one, seconds=args.seconds, rate=rate)
                print(f"| {name} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['errors']} |")
            for rate in (200, 300, 400, 600, 800):
                r = _hey(url, one, seconds=args.seconds, rate=rate, clients=4)
                ok = r["errors"] == 0 and r["p99_ms"] <= 10 and r["rps"] >= 0.95 * rate
                print(
                    f"| 4 clients, fixed {rate} req/s | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
                    f"| {r['errors']} |{'' if ok else ' (not sustained)'}"
                )
                if not ok:
                    break
            started = time.perf_counter()
            response = httpx.post(
                f"{url}/predict", content=many.read_bytes(), headers={"content-type": "application/json"}, timeout=120
            )
            seconds = time.perf_counter() - started
            print(
                f"\none request of 10,000 records: HTTP {response.status_code}, {seconds:.2f} s, "
                f"{10_000 / seconds:,.0f} rows/s"
            )
    finally:
        stop_server(proc)


if __name__ == "__main__":
    main()
