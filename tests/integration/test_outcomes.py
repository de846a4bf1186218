"""`tabrepro outcomes` end to end on a prediction log written in the service's own format (``format_lines``):
a concept shift in one week is flagged (exit 1) and the unshifted week is not; bad labels are named (exit 2);
the A/B verdict waits for its planned sample (exit 0, "continue"); the join on a Dask LocalCluster equals the
one-process join."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from distributed import Client, LocalCluster
from scipy.stats import norm

from tabrepro.cli import main
from tabrepro.config.params import load_params
from tabrepro.contract.spec import load_contract
from tabrepro.outcomes.join import join_outcomes, join_outcomes_dask
from tabrepro.outcomes.labels import clean_labels, read_labels
from tabrepro.outcomes.predictions import prediction_files, read_predictions
from tabrepro.serving.predlog import LoggedRequest, ModelAnswers, format_lines

REPO = Path(__file__).resolve().parents[2]
AUC, PREVALENCE, WEEK = 0.85, 0.265, 1300  # records a week: more than the ~1,040 labels a window needs
MONDAY = datetime(2026, 1, 8, tzinfo=UTC)  # a window start (windows are aligned to 1970-01-01, a Thursday)


def _answers(version: str, role: str, served: bool, p: np.ndarray) -> ModelAnswers:
    return ModelAnswers(version, "0" * 64, role, served, 0.5, range(len(p)), p)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two weeks of single-record requests (primary v1, shadow v2) in two log files, labels 3 days later; in week
    two the outcome of 40 % of the customers flips (the concept moved). Also params and the test-split metrics."""
    work = tmp_path_factory.mktemp("outcomes")
    rng = np.random.default_rng(3)
    labels = []
    for week in range(2):
        lines = []
        y = (rng.random(WEEK) < PREVALENCE).astype(int)
        latent = rng.normal(size=WEEK) + np.sqrt(2) * norm.ppf(AUC) * y
        shadow = latent + rng.normal(scale=0.5, size=WEEK)
        truth = np.where(rng.random(WEEK) < 0.4, 1 - y, y) if week == 1 else y
        for i in range(WEEK):
            ts = MONDAY + timedelta(days=7 * week, seconds=400 * i)
            ident = f"c{week}-{i:05d}"
            answers = [_answers("v1", "primary", True, _sigmoid(latent[i : i + 1]))]
            answers.append(_answers("v2", "candidate", False, _sigmoid(shadow[i : i + 1])))
            lines += format_lines(LoggedRequest(ts, f"r{week}{i}", "customerID", [{"customerID": ident}], answers))
            labels.append((ident, "Yes" if truth[i] else "No", (ts + timedelta(days=3)).isoformat()))
        (work / "logs").mkdir(exist_ok=True)
        (work / "logs" / f"predictions.jsonl{'.1' if week == 0 else ''}").write_bytes(b"".join(lines))
    pd.DataFrame(labels, columns=["customerID", "Churn", "observed_at"]).to_csv(work / "labels.csv", index=False)
    params = load_params(REPO / "params.yaml")
    params["outcomes"] = {**params["outcomes"], "bootstrap": 50}
    (work / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    metrics = {"roc_auc": AUC, "log_loss": 0.40, "ece": 0.02, "positive_rate": PREVALENCE}
    (work / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    return work


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-(x - 1.5)))


def _run(work: Path, *extra: str, labels: str = "labels.csv") -> int:
    argv = ["outcomes", "--labels", str(work / labels), "--predictions", str(work / "logs")]
    argv += ["--params", str(work / "params.yaml"), "--reference", str(work / "metrics.json")]
    with pytest.raises(SystemExit) as done:
        main([*argv, "--report", str(work / "out" / "outcomes.json"), *extra])
    return int(done.value.code)


def test_the_shifted_week_is_flagged_and_the_other_is_not(deployment: Path, capsys: pytest.CaptureFixture) -> None:
    assert _run(deployment) == 1
    report = json.loads((deployment / "out" / "outcomes.json").read_text())
    primary = [w for w in report["concept"]["windows"] if w["role"] == "primary"]
    assert [w["status"] for w in primary] == ["ok", "drifted"]
    assert report["labels"] == {
        "rows": 2 * WEEK, "duplicate": 0, "conflicting": 0, "conflicting_keys": 0, "unknown": 0, "early": 0,
        "late": 0, "on_time": 2 * WEEK,
    }  # fmt: skip
    shadow = [w for w in report["windows"] if w["role"] == "shadow"]
    assert [w["coverage"] for w in shadow] == [1.0, 1.0]
    assert sorted(Path(f).name for f in report["figures"]) == ["ece.png", "log_loss.png", "roc_auc.png"]
    assert "concept drift: RETRAIN" in capsys.readouterr().out


def test_the_ab_verdict_waits_for_the_planned_sample(deployment: Path, capsys: pytest.CaptureFixture) -> None:
    assert _run(deployment, "--ab") == 0
    (ab,) = json.loads((deployment / "out" / "outcomes.json").read_text())["ab"]
    assert (ab["kind"], ab["candidate"], ab["verdict"], ab["n_candidate"]) == ("shadow", "v2", "continue", 2 * WEEK)
    assert ab["required"] > 2 * WEEK and f"{ab['required'] - 2 * WEEK} more to go" in ab["reason"]


def test_a_bad_label_is_named_and_nothing_is_written(deployment: Path, caplog: pytest.LogCaptureFixture) -> None:
    bad = deployment / "bad.csv"
    bad.write_text("customerID,Churn,observed_at\nc0-00001,Yes,2026-01-10\nc0-00002,yes,2026-01-10\n")
    out = deployment / "out" / "outcomes.json"
    before = out.read_bytes() if out.exists() else None
    assert _run(deployment, labels="bad.csv") == 2
    assert "bad.csv:3: Churn: expected one of ['Yes', 'No'], got 'yes'" in caplog.text
    assert (out.read_bytes() if out.exists() else None) == before


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0")
    with cluster, Client(cluster) as client:
        yield client


def test_the_join_on_dask_equals_the_one_process_join(deployment: Path, client: Client) -> None:
    contract = load_contract(load_params(deployment / "params.yaml")["data"])
    labels = pd.read_csv(deployment / "labels.csv", dtype=str)
    first, second = labels["Churn"].iloc[1], labels["Churn"].iloc[2]
    flipped = "No" if second == "Yes" else "Yes"
    extra = [("c0-00001", first, "2026-01-20"), ("c0-00002", flipped, "2026-01-20"), ("nobody", "No", "2026-01-20")]
    late = labels["customerID"] == "c1-00003"
    extra.append(("c1-00003", labels.loc[late, "Churn"].iloc[0], "2026-09-01"))  # only label of c1-00003: late
    messy = pd.concat([labels[~late], pd.DataFrame(extra, columns=labels.columns)], ignore_index=True)
    messy.to_csv(deployment / "messy.csv", index=False)
    clean = clean_labels(read_labels(deployment / "messy.csv", contract))
    kind, files = prediction_files(deployment / "logs")
    assert len(files) == 2
    frames = pd.concat([read_predictions(kind, f, contract) for f in files], ignore_index=True)
    local = join_outcomes(frames, clean, days=7, deadline=30)
    spread = join_outcomes_dask(kind, files, contract, clean, days=7, deadline=30, client=client)
    assert spread.counts == local.counts
    c = local.counts
    assert (c.rows, c.duplicate, c.conflicting, c.conflicting_keys) == (2 * WEEK + 3, 1, 2, 1)
    assert (c.unknown, c.early, c.late, c.on_time) == (1, 0, 1, 2 * WEEK - 2)
    pd.testing.assert_frame_equal(spread.joined, local.joined)
    pd.testing.assert_frame_equal(spread.predicted, local.predicted)


def test_a_missing_reference_is_named(deployment: Path, caplog: pytest.LogCaptureFixture) -> None:
    (deployment / "gone").mkdir(exist_ok=True)
    argv = ["outcomes", "--labels", str(deployment / "labels.csv"), "--predictions", str(deployment / "logs")]
    argv += ["--params", str(deployment / "params.yaml"), "--reference", str(deployment / "gone" / "metrics.json")]
    with pytest.raises(SystemExit) as done:
        main([*argv, "--report", str(deployment / "gone" / "outcomes.json")])
    assert done.value.code == 2
    assert "metrics.json: cannot read the test-split metrics" in caplog.text
    assert not (deployment / "gone" / "outcomes.json").exists()


def test_the_command_documents_its_exit_codes(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["outcomes", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "exit status: 0" in text and "1 retrain" in text and "10 promote, 11 rollback" in text
    assert "2 bad input" in text and "3 an unexpected failure" in text
