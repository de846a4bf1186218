"""`tabrepro drift` on the packaged sample: its untouched test rows pass, the same rows with two features
shifted on purpose are flagged (those two and no other), a prediction log of them gives the same verdicts, and
every kind of bad input exits 2 naming the problem."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tabrepro.config.params import DriftParams, load_params
from tabrepro.contract.records import build_record_model
from tabrepro.monitoring.check import check_drift
from tabrepro.monitoring.report import DriftReport, ScoreDrift
from tabrepro.serving.runtime import ServingModel

REPO = Path(__file__).resolve().parents[2]
SHIFTED = {"MonthlyCharges", "Contract"}


def _test_rows(packaged: Path) -> pd.DataFrame:
    """The raw rows (text, as exported) of the sample's test split: the rows the score reference was made on."""
    raw = pd.read_csv(packaged / "raw" / "telco.csv", dtype="str", keep_default_na=False)
    ids = pd.read_parquet(packaged / "reports" / "predictions_test.parquet")["customerID"]
    return raw.set_index("customerID").loc[ids].reset_index()


def _shift(rows: pd.DataFrame, *, contract_max: float) -> pd.DataFrame:
    """MonthlyCharges x1.3 + 15 (clipped to the contract's max); 80 % of the rows set to Month-to-month."""
    charges = (rows["MonthlyCharges"].astype(float) * 1.3 + 15).clip(upper=contract_max).round(2)
    month_to_month = np.random.default_rng(0).random(len(rows)) < 0.8
    return rows.assign(
        MonthlyCharges=charges.map(lambda x: f"{x:.2f}"),
        Contract=rows["Contract"].where(~month_to_month, "Month-to-month"),
    )


@pytest.fixture(scope="module")
def work(packaged: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the current data (untouched and shifted test rows) and a params file for the CLI."""
    work = tmp_path_factory.mktemp("drift")
    (work / "params.yaml").write_text(yaml.safe_dump(load_params(REPO / "params.yaml")), encoding="utf-8")
    rows = _test_rows(packaged)
    contract_max = ServingModel.read_manifest(packaged / "models" / "serving").contract["features"]
    rows.to_csv(work / "untouched.csv", index=False)
    _shift(rows, contract_max=contract_max["MonthlyCharges"]["max"]).to_csv(work / "shifted.csv", index=False)
    return work


def _drift(packaged: Path, work: Path, current: Path | str, *extra: str, name: str = "drift"):
    """Run the CLI as a scheduler would, from the sample's folder; return (exit code, output, report or None)."""
    report = work / "out" / name / "drift.json"
    command = [sys.executable, "-m", "tabrepro.cli", "drift", "--current", str(current), "--report", str(report)]
    done = subprocess.run(
        [*command, "--params", str(work / "params.yaml"), *extra],
        cwd=packaged,
        capture_output=True,
        text=True,
        timeout=120,
    )
    loaded = json.loads(report.read_text()) if report.is_file() and done.returncode != 2 else None
    return done.returncode, done.stdout + done.stderr, loaded


def _check(packaged: Path, current: Path) -> DriftReport:
    """The report of ``current`` in process, with the default thresholds."""
    return check_drift(
        current,
        reference=packaged / "models" / "reference_stats.json",
        serving_dir=packaged / "models" / "serving",
        params=DriftParams(),
    )


def _flagged(report: dict) -> set[str]:
    """The drifted features of a report file."""
    return {name for name, f in report["features"].items() if f["drifted"]}


def _drifted(report: DriftReport) -> set[str]:
    """The drifted features of a report in process."""
    return {name for name, f in report.features.items() if f.drifted}


def test_untouched_test_rows_are_not_flagged(packaged: Path, work: Path):
    code, output, report = _drift(packaged, work, work / "untouched.csv", name="untouched")
    assert code == 0, output
    assert _flagged(report) == set(), {n: (f["psi"], f["p_value"]) for n, f in report["features"].items()}
    assert report["score"]["psi"] < 0.01 and not report["score"]["drifted"]  # the very rows of the score reference
    assert report["decision"] == {"retrain": False, "reasons": []}
    assert report["inputs"]["rows"] == report["inputs"]["scored"] == 225
    assert report["figures"] == [] and "no retrain needed" in output


def test_shifted_features_and_only_those_are_flagged(packaged: Path, work: Path):
    code, output, report = _drift(packaged, work, work / "shifted.csv", name="shifted")
    assert code == 1, output
    assert _flagged(report) == SHIFTED
    for name in SHIFTED:
        feature = report["features"][name]
        assert feature["band"] == "significant" and feature["p_value"] < 1e-6, feature
    assert not report["features"]["TotalCharges"]["drifted"] and not report["features"]["tenure"]["drifted"]
    assert report["features"]["MonthlyCharges"]["test"] == "ks"
    assert report["features"]["Contract"]["test"] == "chi2"
    score = report["score"]  # a dearer, shorter-contract customer base churns more
    assert score["psi"] > 0.1 and score["p_value"] < 0.01
    assert score["mean"]["current"] > score["mean"]["reference"]
    assert report["decision"]["retrain"] and "MonthlyCharges" in report["decision"]["reasons"][0]
    figures = {Path(f).name for f in report["figures"]}
    assert {"MonthlyCharges.png", "Contract.png"} <= figures
    assert all((work / "out" / "shifted" / "figures" / f).stat().st_size > 1000 for f in figures)
    assert "RETRAIN" in output and "MonthlyCharges" in output


def test_score_writes_the_same_drift_report_in_the_same_pass(packaged: Path, work: Path):
    _, _, alone = _drift(packaged, work, work / "shifted.csv", name="alone")
    report = work / "out" / "scored" / "drift.json"
    command = [sys.executable, "-m", "tabrepro.cli", "score", "--input", str(work / "shifted.csv")]
    command += ["--output", str(work / "out" / "scored.csv"), "--no-progress", "--chunk-rows", "100"]
    done = subprocess.run(
        [*command, "--drift-report", str(report), "--params", str(work / "params.yaml")],
        cwd=packaged,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr  # scoring succeeded; the drift verdict is in the report and the log
    assert "drift: retrain recommended" in done.stderr
    scored = json.loads(report.read_text())
    assert _flagged(scored) == SHIFTED
    assert scored["decision"] == alone["decision"]
    for name, feature in alone["features"].items():
        assert scored["features"][name]["psi"] == pytest.approx(feature["psi"], abs=1e-9), name
    assert scored["score"]["psi"] == pytest.approx(alone["score"]["psi"], abs=1e-6)
    assert (work / "out" / "scored" / "figures" / "MonthlyCharges.png").is_file()


def _log_lines(packaged: Path, rows: pd.DataFrame) -> list[dict]:
    """The service's prediction log of ``rows``: one line per record, as documented (validated inputs)."""
    model = ServingModel(packaged / "models" / "serving")
    record_model = build_record_model(model.contract)
    inputs, errors = record_model.parse_records(rows.drop(columns="Churn").to_dict(orient="records"))
    assert errors == []
    probabilities = model.predict_proba(inputs)
    common = {"model_version": model.version, "model_sha256": model.sha256, "served": True}
    return [
        {"ts": "2026-11-25T08:00:00.123456+00:00", "request_id": f"q{i}", **common, "role": "primary"}
        | {"id": r["customerID"], "inputs": r, "probability": float(p), "label": int(p >= model.threshold)}
        for i, (r, p) in enumerate(zip(inputs, probabilities, strict=True))
    ]


def _write_log(path: Path, lines: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def test_a_prediction_log_gives_the_verdicts_of_the_table(packaged: Path, work: Path):
    shifted = pd.read_csv(work / "shifted.csv", dtype="str", keep_default_na=False)
    lines = _log_lines(packaged, shifted)
    noise = [{**lines[0], "role": "candidate", "probability": 0.99}, {**lines[1], "served": False, "inputs": None}]
    logs = work / "logs"
    _write_log(logs / "predictions.jsonl.1", lines[:100] + noise)  # rotated: the older lines
    _write_log(logs / "predictions.jsonl", lines[100:])
    code, output, from_log = _drift(packaged, work, logs, name="log")
    assert code == 1, output
    assert from_log["inputs"]["kind"] == "log" and from_log["inputs"]["rows"] == len(shifted)
    table = _check(packaged, work / "shifted.csv")
    assert _flagged(from_log) == _drifted(table) == SHIFTED
    for name, feature in table.features.items():
        logged = from_log["features"][name]
        assert (logged["band"], logged["flags"]) == (feature.band, feature.flags), name
        assert logged["psi"] == pytest.approx(feature.psi, abs=1e-9), name
    assert isinstance(table.score, ScoreDrift)
    assert from_log["score"]["psi"] == pytest.approx(table.score.psi, abs=1e-6)
    assert from_log["decision"]["retrain"] is table.decision.retrain is True


def test_a_typed_parquet_table_reads_like_the_csv(packaged: Path, work: Path):
    rows = pd.read_csv(work / "shifted.csv", dtype="str", keep_default_na=False)
    typed = rows.assign(
        tenure=rows["tenure"].astype(int),
        SeniorCitizen=rows["SeniorCitizen"].astype(int),
        MonthlyCharges=rows["MonthlyCharges"].astype(float),
        TotalCharges=pd.to_numeric(rows["TotalCharges"], errors="coerce"),  # " " -> null
    )
    typed.to_parquet(work / "shifted.parquet", index=False)
    from_csv, from_parquet = (_check(packaged, work / f"shifted.{kind}") for kind in ("csv", "parquet"))
    assert from_parquet.inputs.kind == "parquet"
    assert from_parquet.features == from_csv.features and from_parquet.score == from_csv.score


def test_unknown_categories_are_a_drift_signal_not_an_error(packaged: Path, work: Path):
    rows = _test_rows(packaged)
    rows.loc[rows.index[:9], "PaymentMethod"] = "Crypto"  # 4 % of the rows
    rows.to_csv(work / "unknown.csv", index=False)
    report = _check(packaged, work / "unknown.csv")
    payment = report.features["PaymentMethod"]
    assert payment.unknown_share == pytest.approx(9 / 225, abs=1e-6) and payment.unknown_values == {"Crypto": 9}
    assert _drifted(report) == {"PaymentMethod"} and "unknown_values" in payment.flags
    assert report.inputs.scored == 216 and report.inputs.refused_by == {"PaymentMethod: unknown_category": 9}
    assert report.decision.retrain and "Crypto" in report.decision.reasons[0]


def _bad_inputs(packaged: Path, work: Path) -> dict[str, tuple[list[str], str]]:
    """name -> (CLI arguments, what the error must say)."""
    bad = work / "bad"
    bad.mkdir(exist_ok=True)
    rows = _test_rows(packaged)
    rows.drop(columns=["MonthlyCharges", "Contract"]).rename(columns={"tenure": "tenur"}).to_csv(
        bad / "columns.csv", index=False
    )
    (bad / "empty.csv").write_bytes(b"")
    latin = rows.assign(PaymentMethod=rows["PaymentMethod"].where(rows.index > 3, "Chèque"))
    (bad / "latin1.csv").write_bytes(latin.to_csv(index=False).encode("latin-1"))
    lines = _log_lines(packaged, rows.iloc[:5])
    text = [json.dumps(line) for line in lines]
    text[2] = text[2][:60]  # a line cut short, as a writer killed mid-line leaves it
    corrupt = bad / "corrupt.jsonl"
    corrupt.write_text("\n".join(text) + "\n", encoding="utf-8")
    _write_log(bad / "candidate.jsonl", [{**line, "role": "candidate"} for line in lines])
    reference = json.loads((packaged / "models" / "reference_stats.json").read_text())
    (bad / "reference.json").write_text(json.dumps({**reference, "contract": "bank_marketing"}))
    rows.iloc[:50].to_csv(bad / "few.csv", index=False)
    (bad / "rows.txt").write_text("not a table\n")
    return {
        "missing columns": (
            ["--current", str(bad / "columns.csv")],
            "missing column(s) ['tenure', 'Contract', 'MonthlyCharges'] of data contract 'telco_churn'; "
            "columns it does not know: ['tenur']",
        ),
        "empty file": (["--current", str(bad / "empty.csv")], "empty.csv: the file is empty"),
        "not UTF-8": (["--current", str(bad / "latin1.csv")], "latin1.csv: not valid UTF-8 at line 2 (byte offset"),
        "corrupt log line": (["--current", str(corrupt)], "corrupt.jsonl:3: corrupt log line"),
        "no served lines": (["--current", str(bad / "candidate.jsonl")], "no served lines with role 'primary'"),
        "another contract": (
            ["--current", str(work / "untouched.csv"), "--reference", str(bad / "reference.json")],
            "contract 'bank_marketing'",
        ),
        "too few rows": (["--current", str(bad / "few.csv")], "50 current row(s): too few"),
        "unknown kind": (["--current", str(bad / "rows.txt")], "rows.txt: cannot tell what it is"),
    }


def test_bad_input_exits_2_naming_the_problem(packaged: Path, work: Path):
    cases = _bad_inputs(packaged, work)
    for name, (args, message) in cases.items():
        code, output, report = _drift(packaged, work, args[1], *args[2:], name=name.replace(" ", "_"))
        assert code == 2, f"{name}: {output}"
        assert message in output, f"{name}: expected {message!r} in:\n{output}"
        assert report is None and not (work / "out" / name.replace(" ", "_")).exists(), name
