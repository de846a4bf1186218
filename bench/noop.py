"""What a `dvc repro` with nothing to do costs here, next to a trivial six-stage DVC pipeline, in one run.

Both repositories are reproduced and committed first; then `dvc repro` (which must answer "up to date") is timed
in each, alternately, ``--runs`` times, and the medians and their ratio printed (target: at most 1.3x, exit
status 1 above it). ``--profile`` adds one `dvc repro` of ours under cProfile: the functions with the largest
cumulative time.

    .venv/bin/python bench/noop.py [--repo a reproduced clone] [--runs 9] [--profile]

Without ``--repo`` the repository is copied as tests/e2e does (its raw sample, a small tuning budget) and
reproduced once in a temporary folder first (minutes); the no-op itself does not depend on the data's size.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 1.3
UP_TO_DATE = "Data and pipelines are up to date."


def dvc(repo: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, env=env, capture_output=True, text=True)


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, capture_output=True, check=True)


def trivial_pipeline(root: Path) -> Path:
    """Six chained stages, each one param, one dep and one output (a small file), reproduced and committed."""
    root.mkdir()
    git(root, "init", "-q")
    dvc(root, "init", "-q")
    (root / "params.yaml").write_text("".join(f"s{i}: {i}\n" for i in range(6)))
    (root / "in.txt").write_text("seed\n")
    stages = []
    for i in range(6):
        dep = "in.txt" if i == 0 else f"out{i - 1}.txt"
        cmd = f"python -c \"open('out{i}.txt','w').write(open('{dep}').read()+'{i}')\""
        stages.append(f"  s{i}:\n    cmd: {cmd}\n    deps: [{dep}]\n    params: [s{i}]\n    outs: [out{i}.txt]\n")
    (root / "dvc.yaml").write_text("stages:\n" + "".join(stages))
    _reproduce(root)
    return root


def _reproduce(repo: Path) -> None:
    done = dvc(repo, "repro")
    if done.returncode != 0:
        sys.exit(f"dvc repro failed in {repo}:\n{done.stdout}\n{done.stderr}")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=bench", "-c", "user.email=bench@tabrepro.invalid", "commit", "-qm", "reproduced")


def ours(root: Path) -> Path:
    """This repository as tests/e2e copies it (raw sample, small budget), reproduced and committed."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.e2e.conftest import copy_repository

    repo = root / "tabrepro"
    repo.mkdir()
    os.environ.setdefault("BENTOML_HOME", str(root / "bentoml"))
    copy_repository(repo)
    print(f"reproducing a copy of the repository in {repo} (minutes)...", flush=True)
    _reproduce(repo)
    return repo


def time_noop(repo: Path) -> float:
    started = time.perf_counter()
    done = dvc(repo, "repro")
    seconds = time.perf_counter() - started
    if UP_TO_DATE not in done.stdout:
        sys.exit(f"{repo}: `dvc repro` was not a no-op:\n{done.stdout}\n{done.stderr}")
    return seconds


def profile(repo: Path, top: int = 25) -> str:
    """One `dvc repro` of ``repo`` in this process under cProfile: the ``top`` functions by cumulative time."""
    from dvc.cli import main

    cwd = Path.cwd()
    os.chdir(repo)
    profiler = cProfile.Profile()
    try:
        profiler.runcall(main, ["repro", "-q"])
    finally:
        os.chdir(cwd)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", type=Path, help="a reproduced clone of this repository (default: make one)")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tabrepro-noop-") as tmp:
        trivial = trivial_pipeline(Path(tmp) / "trivial")
        repo = args.repo.resolve() if args.repo else ours(Path(tmp))
        time_noop(trivial), time_noop(repo)  # warm the page cache and DVC's state databases
        timings: dict[str, list[float]] = {"trivial six-stage pipeline": [], "tabrepro": []}
        for _ in range(args.runs):
            timings["trivial six-stage pipeline"].append(time_noop(trivial))
            timings["tabrepro"].append(time_noop(repo))
        medians = {name: statistics.median(values) for name, values in timings.items()}
        ratio = medians["tabrepro"] / medians["trivial six-stage pipeline"]
        print(f"`dvc repro` with nothing to do, median of {args.runs} runs each (alternating):")
        for name, values in timings.items():
            print(f"  {name:28s} {medians[name]:6.3f} s  (min {min(values):.3f}, max {max(values):.3f})")
        print(f"  ratio {ratio:.2f}x (target at most {TARGET}x)")
        if args.profile:
            print(profile(repo))
    sys.exit(0 if ratio <= TARGET else 1)


if __name__ == "__main__":
    main()
