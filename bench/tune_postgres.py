"""Tuning throughput on PostgreSQL: trials per minute with 1 worker (the tune stage alone) and 2 (the stage plus
one ``tabrepro tune-worker``), on one shared study.

Starts a throw-away PostgreSQL 15 the way the tests do (``tests/support/postgres.py``: initdb + pg_ctl in a temp
folder, a free port), prepares and featurizes the committed data set in a temp folder once, then for each worker
count runs the stage (and workers) on a fresh database with one family (default: the XGBoost candidate of
params.yaml), ``--trials`` trials, pruning as configured, one core per process (``train.n_jobs: 1``):

    .venv/bin/python bench/tune_postgres.py [--trials 30] [--family xgboost] [--repeats 1]

Prints, per worker count: finished trials, the wall time of the search (first trial start to last trial end, read
from the study, so process start-up is left out), trials/minute, the median duration of one trial (when it grows
with the workers, they share cores instead of adding them), and the speed-up of 2 workers over 1 (median over
``--repeats``). Also prints the 1-minute load average before and after: on a shared machine it explains
the numbers. Needs the PostgreSQL 15 server binaries (``apt-get install -y postgresql-15``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import optuna
import yaml

from tabrepro.config.params import FeaturesParams, PathsParams, SplitParams, load_params
from tabrepro.contract.spec import load_contract
from tabrepro.stages import featurize, prepare

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the test harness's server, started the same way as in the tests
from tests.support.postgres import PostgresServer, remove_server, started_server  # noqa: E402


def _prepare(work: Path, family: str, trials: int) -> dict:
    """Prepared + featurized data in ``work`` (relative paths), and params that search ``family`` only."""
    params = load_params(REPO / "params.yaml")
    data = {**params["data"], "source": str(REPO / params["data"]["source"])}
    paths = PathsParams.model_validate(params["paths"])
    model = params["model"]["candidates"][family] if params["model"]["name"] == "auto" else params["model"]
    os.chdir(work)
    prepare.run(paths, load_contract(data), SplitParams.model_validate(params["split"]))
    featurize.run(paths, load_contract(data), FeaturesParams.model_validate(params["features"]))
    tune = {**params["tune"], "n_trials": trials, "study_name": "bench"}
    return {**params, "data": data, "model": model, "tune": tune, "train": {**params["train"], "n_jobs": 1}}


def _search(work: Path, server: PostgresServer, params: dict, workers: int) -> tuple[int, float, float]:
    """Run the stage plus ``workers - 1`` tune-workers on a fresh database; (finished trials, search seconds,
    median seconds of one trial: if it grows with the workers, they are short of cores)."""
    url = server.create_database()
    params = {**params, "tune": {**params["tune"], "storage": url}}
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, **server.env}
    commands = [[sys.executable, "-m", "tabrepro.stages.tune"]]
    commands += [[sys.executable, "-m", "tabrepro.cli", "tune-worker", "--worker", str(w)] for w in range(1, workers)]
    procs = [subprocess.Popen(c, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for c in commands]
    for proc in procs:
        output, _ = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"{proc.args} failed ({proc.returncode}):\n{output.decode()[-3000:]}")
    trials = optuna.load_study(study_name=params["tune"]["study_name"], storage=server.storage(url)).trials
    finished = [t for t in trials if t.state.is_finished() and t.datetime_complete is not None]
    start = min(t.datetime_start for t in finished)
    end = max(t.datetime_complete for t in finished)
    trial_s = statistics.median(t.duration.total_seconds() for t in finished)
    return len(finished), (end - start).total_seconds(), trial_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--family", default="xgboost", choices=["logreg", "random_forest", "xgboost"])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    server = started_server()
    rates: dict[int, list[float]] = {1: [], 2: []}
    try:
        with tempfile.TemporaryDirectory(prefix="tabrepro-bench-tune-") as tmp:
            work = Path(tmp)
            params = _prepare(work, args.family, args.trials)
            print(f"{args.family}, {args.trials} trials per search, {os.cpu_count()} CPUs, PostgreSQL on 127.0.0.1, "
                  f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
            for _ in range(args.repeats):
                for workers in (1, 2):
                    n, seconds, trial_s = _search(work, server, params, workers)
                    rates[workers].append(60 * n / seconds)
                    print(f"  {workers} worker(s): {n} trials finished in {seconds:6.1f} s: "
                          f"{rates[workers][-1]:6.1f} trials/min (median trial {trial_s:.2f} s)")  # fmt: skip
    finally:
        remove_server(server)
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    print(f"median trials/min: 1 worker {one:.1f}, 2 workers {two:.1f}; speed-up {two / one:.2f}x "
          f"(load average {os.getloadavg()[0]:.1f})")  # fmt: skip


if __name__ == "__main__":
    main()
