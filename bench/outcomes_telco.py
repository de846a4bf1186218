"""A simulated deployment on Telco, closing the loop: predictions logged, labels arriving late, a concept shift
caught, and an A/B test between two packaged models reaching its verdict (prints numbers; asserts the verdicts).

Run:  .venv/bin/python bench/outcomes_telco.py [--per-week 12000] [--seed 0]

1. Two models are packaged (prepare -> package, no tuning) on disjoint samples of the raw export in a temporary
   folder: the primary on 600 rows, the candidate on 2,500; the customers in neither sample are the held-out
   population. Both score all of it with their ONNX graphs (``tabrepro score``'s ``score_file``).
2. Four weeks of traffic: ``--per-week`` single-record requests a week, customers drawn from the held-out ones
   (fresh ids), a 50 % canary split by the service's own sticky hash (``split_canary``), each request written
   in the prediction log's format (``format_lines``) with the real probabilities of the model that answered.
3. Labels: the customer's true churn, observed 1 to 14 days later; 1 % arrive after the 30-day deadline, plus a few
   duplicates, conflicting pairs and unknown ids. From week 3 the concept moves: customers on one-year contracts
   churn where they did not and stay where they churned (their target is flipped).
4. ``tabrepro outcomes`` on weeks 1-2 (expect exit 0, no retrain; with --ab a verdict on the canary), and on all
   four weeks (expect exit 1: the shifted weeks are flagged, the first two are not).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tabrepro.batch.scoring import score_file  # noqa: E402
from tabrepro.config.params import load_params  # noqa: E402
from tabrepro.serving.predlog import LoggedRequest, ModelAnswers, format_lines  # noqa: E402
from tabrepro.serving.rollout import split_canary  # noqa: E402
from tests.conftest import package_sample  # noqa: E402

START = datetime(2026, 1, 8, tzinfo=UTC)  # a window start (windows are aligned to 1970-01-01, a Thursday)
SHIFTED_CONTRACT = "One year"


def package_models(work: Path) -> tuple[Path, Path, pd.DataFrame]:
    """(primary folder, candidate folder, held-out raw rows): two models on disjoint samples."""
    params = load_params(REPO / "params.yaml")
    raw = pd.read_csv(REPO / params["data"]["source"], dtype="str", keep_default_na=False)
    primary = package_sample(work / "primary", params, rows=600, seed=11)
    used = set(pd.read_csv(primary / "raw" / "telco.csv", dtype="str")["customerID"])
    rest = {**params, "data": {**params["data"], "source": str(work / "rest.csv")}}
    raw[~raw["customerID"].isin(used)].to_csv(work / "rest.csv", index=False)
    candidate = package_sample(work / "candidate", rest, rows=2500, seed=12)
    used |= set(pd.read_csv(candidate / "raw" / "telco.csv", dtype="str")["customerID"])
    return primary, candidate, raw[~raw["customerID"].isin(used)].reset_index(drop=True)


def score(folder: Path, held_out: Path, out: Path) -> tuple[str, str, float, pd.Series]:
    summary = score_file(held_out, out, serving_dir=folder / "models" / "serving", progress=False)
    scores = pd.read_parquet(out)
    return summary.model_version, summary.model_sha256, 0.5, scores.set_index("customerID")["probability"]


def write_traffic(work: Path, held: pd.DataFrame, models: list, *, per_week: int, seed: int) -> pd.DataFrame:
    """Four weeks of logged requests (one log file a week); the records sent, with their time and answer."""
    rng = np.random.default_rng(seed)
    features = [c for c in held.columns if c not in ("customerID", "Churn")]
    sent = []
    for week in range(4):
        picks = rng.integers(0, len(held), per_week)
        ids = [f"{held['customerID'][i]}#{week}-{k}" for k, i in enumerate(picks)]
        _, canary_idx = split_canary(ids, 50.0)
        to_canary = np.zeros(per_week, bool)
        to_canary[canary_idx] = True
        lines = []
        for k, i in enumerate(picks):
            ts = START + timedelta(days=7 * week, seconds=float(k) * 7 * 86_400 / per_week)
            version, sha, threshold, probs = models[int(to_canary[k])]
            role = "candidate" if to_canary[k] else "primary"
            p = np.array([probs[held["customerID"][i]]], dtype=float)
            answer = ModelAnswers(version, sha, role, True, threshold, [0], p)
            record = {"customerID": ids[k], **{f: held[f][i] for f in features}}
            lines += format_lines(LoggedRequest(ts, f"w{week}r{k}", "customerID", [record], [answer]))
            sent.append((ids[k], ts, held["Churn"][i], held["Contract"][i]))
        (work / "logs" / f"week{week}").mkdir(parents=True, exist_ok=True)
        (work / "logs" / f"week{week}" / "predictions.jsonl").write_bytes(b"".join(lines))
    return pd.DataFrame(sent, columns=["customerID", "ts", "Churn", "Contract"])


def deliver_labels(sent: pd.DataFrame, *, seed: int) -> pd.DataFrame:
    """Labels 1-14 days after the prediction (1 % after 40-60 days: late), the shift from week 3, and anomalies."""
    rng = np.random.default_rng(seed + 1)
    delay = rng.uniform(1, 14, len(sent))
    late = rng.random(len(sent)) < 0.01
    delay[late] = rng.uniform(40, 60, late.sum())
    shifted = (sent["ts"] >= START + timedelta(days=14)) & (sent["Contract"] == SHIFTED_CONTRACT)
    churn = np.where(shifted, sent["Churn"].map({"Yes": "No", "No": "Yes"}), sent["Churn"])
    observed = [(t + timedelta(days=float(d))).isoformat() for t, d in zip(sent["ts"], delay, strict=True)]
    labels = pd.DataFrame({"customerID": sent["customerID"], "Churn": churn, "observed_at": observed})
    extra = labels.sample(30, random_state=seed)  # 30 duplicates
    clash = labels.sample(10, random_state=seed + 1).assign(Churn=lambda f: f["Churn"].map({"Yes": "No", "No": "Yes"}))
    unknown = labels.sample(5, random_state=seed + 2).assign(customerID=lambda f: f["customerID"] + "-unknown")
    return pd.concat([labels, extra, clash, unknown], ignore_index=True)


def run_outcomes(work: Path, logs: list[Path], labels: Path, reference: Path, name: str, *extra: str) -> int:
    folder = work / "logs_" / name
    folder.mkdir(parents=True, exist_ok=True)
    for log in logs:  # one folder of logs, as rotated: predictions.jsonl.N
        (folder / f"predictions.jsonl.{log.parent.name[-1]}").write_bytes(log.read_bytes())
    argv = [sys.executable, "-m", "tabrepro.cli", "outcomes", "--labels", str(labels), "--predictions", str(folder)]
    argv += ["--reference", str(reference), "--report", str(work / name / "outcomes.json"), *extra]
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
    print(f"\n$ tabrepro outcomes ({name}) -> exit {done.returncode} in {time.perf_counter() - started:.1f} s")
    print(done.stdout.rstrip())
    if done.returncode not in (0, 1, 10, 11):
        print(done.stderr[-3000:])
    return done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-week", type=int, default=12_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="outcomes-bench-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        primary, candidate, held = package_models(work)
        held.to_csv(work / "held.csv", index=False)
        models = [
            score(primary, work / "held.csv", work / "p.parquet"),
            score(candidate, work / "held.csv", work / "c.parquet"),
        ]
        print(
            f"packaged and scored two models in {time.perf_counter() - started:.0f} s; {len(held)} held-out customers"
        )
        sent = write_traffic(work, held, models, per_week=args.per_week, seed=args.seed)
        labels = deliver_labels(sent, seed=args.seed)
        labels.to_csv(work / "labels.csv", index=False)
        first = sent["ts"] < START + timedelta(days=14)
        labels[labels["customerID"].str.split("#").str[1].str[0].isin(["0", "1"])].to_csv(
            work / "labels_1-2.csv", index=False
        )
        print(f"{len(sent)} requests over 4 weeks ({first.sum()} in weeks 1-2), {len(labels)} label rows")
        reference = primary / "reports" / "metrics.json"
        print(f"test split of the primary: {json.loads(reference.read_text())['roc_auc']:.3f} ROC-AUC")
        logs = [work / "logs" / f"week{w}" / "predictions.jsonl" for w in range(4)]
        code_12 = run_outcomes(work, logs[:2], work / "labels_1-2.csv", reference, "weeks1-2")
        code_ab = run_outcomes(work, logs[:2], work / "labels_1-2.csv", reference, "weeks1-2-ab", "--ab")
        code_all = run_outcomes(work, logs, work / "labels.csv", reference, "weeks1-4")
        print(
            f"\nverdicts: weeks 1-2 exit {code_12} (expect 0), A/B exit {code_ab}, weeks 1-4 exit {code_all} (expect 1)"
        )
        if (code_12, code_all) != (0, 1) or code_ab not in (10, 11):
            sys.exit(1)


if __name__ == "__main__":
    main()
