"""`tabrepro report`: tolerances, verdicts, gates and the Markdown, on inline dvc diff dicts."""

from __future__ import annotations

import pytest
import yaml

from tabrepro.artefacts import PackagedGate
from tabrepro.cli import build_parser
from tabrepro.reporting.markdown import GateRecord, Plots, format_delta, format_value, render_gates, render_report
from tabrepro.reporting.report import parse_gate, parse_metrics_text
from tabrepro.reporting.tolerances import (
    ReportError,
    Tolerance,
    check_tolerances,
    judge_change,
    parse_tolerance,
    parse_tolerances,
    resolve_metric,
)
from tests.conftest import REPO

# The shapes `dvc params diff REV --json` and `dvc metrics diff REV --all --json` print (dvc 3.67).
PARAMS_DIFF = {"params.yaml": {"model.alpha": {"old": 1.0, "new": 2.0, "diff": 1.0}}}
METRICS_DIFF = {
    "reports/metrics.json": {
        "segments.Contract.roc_auc_gap": {"old": 0.05, "new": 0.04, "diff": -0.01},
        "roc_auc": {"old": 0.9, "new": 0.88, "diff": -0.020000000000000018},
        "brier": {"old": 0.1, "new": 0.11, "diff": 0.01},
        "model": {"old": "xgboost", "new": "xgboost"},
        "gate.verdict": {"old": "pass", "new": "fail"},
        "pr_auc": {"old": None, "new": 0.7},
    },
    "reports/tune/metrics.json": {
        "roc_auc": {"old": 0.85, "new": 0.86, "diff": 0.01},
        "best_cv_roc_auc": {"old": 0.85, "new": 0.86, "diff": 0.01},
    },
}


def test_parse_tolerance_reads_sign_and_optional_file_prefix():
    assert parse_tolerance("roc_auc:-0.005") == Tolerance("roc_auc:-0.005", "roc_auc", -0.005)
    assert parse_tolerance("brier:+0.002").tol == 0.002
    prefixed = parse_tolerance("reports/metrics.json:roc_auc:-0.005")
    assert (prefixed.key, prefixed.tol) == ("reports/metrics.json:roc_auc", -0.005)


def test_parse_tolerances_splits_commas_across_repeated_flags():
    keys = [t.key for t in parse_tolerances(["roc_auc:-0.005,brier:+0.002", "f1:-0.01"])]
    assert keys == ["roc_auc", "brier", "f1"]


@pytest.mark.parametrize("spec", ["roc_auc", "roc_auc:", ":-0.1", "roc_auc:abc", "roc_auc:-"])
def test_malformed_tolerance_is_refused_by_name(spec):
    with pytest.raises(ReportError, match="--fail-on") as info:
        parse_tolerance(spec)
    assert repr(spec) in str(info.value)


@pytest.mark.parametrize("tol", ["0", "-0.0", "nan", "inf"])
def test_zero_or_non_finite_tolerance_is_refused(tol):
    with pytest.raises(ReportError, match="non-zero finite"):
        parse_tolerance(f"roc_auc:{tol}")


@pytest.mark.parametrize(
    ("old", "new", "tol", "status"),
    [
        (0.90, 0.88, -0.005, "broken"),  # higher is better, dropped by more than allowed
        (0.90, 0.897, -0.005, "ok"),  # dropped, within the allowance
        (0.90, 0.95, -0.005, "ok"),  # improved
        (0.90, 0.88, -0.02, "ok"),  # dropped by exactly the allowance (0.020000000000000018 in floats)
        (0.10, 0.11, 0.002, "broken"),  # lower is better, rose by more than allowed
        (0.10, 0.101, 0.002, "ok"),
        (0.10, 0.05, 0.002, "ok"),  # improved
    ],
)
def test_judge_change_for_both_signs(old, new, tol, status):
    delta, got = judge_change(old, new, tol)
    assert got == status
    assert delta == pytest.approx(new - old)


def test_judge_change_new_and_removed_metrics():
    assert judge_change(None, 0.7, -0.005) == (None, "new")
    assert judge_change(0.7, None, -0.005) == (None, "removed")


def test_check_tolerances_against_a_metrics_diff():
    verdicts = check_tolerances(
        parse_tolerances(["reports/metrics.json:roc_auc:-0.005", "brier:+0.02", "pr_auc:-0.01"]), METRICS_DIFF
    )
    assert [(v.file, v.key, v.status) for v in verdicts] == [
        ("reports/metrics.json", "roc_auc", "broken"),
        ("reports/metrics.json", "brier", "ok"),
        ("reports/metrics.json", "pr_auc", "new"),
    ]
    assert [v.broken for v in verdicts] == [True, False, False]


def test_unknown_key_is_an_error_naming_it():
    with pytest.raises(ReportError, match="no metric 'roc_aux'"):
        resolve_metric(parse_tolerance("roc_aux:-0.005"), METRICS_DIFF)
    with pytest.raises(ReportError, match="reports/metrics.json has no metric 'best_cv_roc_auc'"):
        resolve_metric(parse_tolerance("reports/metrics.json:best_cv_roc_auc:-0.005"), METRICS_DIFF)


def test_ambiguous_key_needs_a_file_prefix():
    with pytest.raises(ReportError, match="several metrics files") as info:
        resolve_metric(parse_tolerance("roc_auc:-0.005"), METRICS_DIFF)
    assert "reports/metrics.json" in str(info.value) and "reports/tune/metrics.json" in str(info.value)
    tolerance = parse_tolerance("reports/tune/metrics.json:roc_auc:-0.005")
    assert resolve_metric(tolerance, METRICS_DIFF) == ("reports/tune/metrics.json", "roc_auc")
    assert resolve_metric(parse_tolerance("best_cv_roc_auc:-0.01"), METRICS_DIFF)[0] == "reports/tune/metrics.json"


@pytest.mark.parametrize("key", ["model", "gate.verdict"])
def test_tolerance_on_a_non_numeric_metric_is_an_error(key):
    with pytest.raises(ReportError, match="not a number"):
        check_tolerances([parse_tolerance(f"reports/metrics.json:{key}:-1")], METRICS_DIFF)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.8562764294907153, "0.8563"),
        (0.1, "0.1"),
        (1057, "1057"),
        (12345.678, "12346"),
        (4.172325134277344e-07, "4.172e-07"),
        (True, "true"),
        (None, "—"),
        ("a|b", "a\\|b"),
        ([1, 2], "[1, 2]"),
    ],
)
def test_format_value(value, text):
    assert format_value(value) == text


def test_format_delta_signs_numbers_and_names_missing_sides():
    assert format_delta(0.9, 0.88) == "-0.02"
    assert format_delta(0.1, 0.11) == "+0.01"
    assert format_delta(None, 0.7) == "new"
    assert format_delta(0.7, None) == "removed"
    assert format_delta("a", "b") == ""
    assert format_delta(0.5, 0.5) == format_delta(3, 3) == "0"


def _render(**overrides: object) -> str:
    args = {
        "base_name": "main",
        "base_sha": "abc1234",
        "params_diff": PARAMS_DIFF,
        "metrics_diff": METRICS_DIFF,
        "gates": [
            GateRecord(
                "reports/metrics.json",
                PackagedGate(passed=False, reasons=("roc_auc below 0.89",)),
                PackagedGate(passed=True),
            )
        ],
        "verdicts": check_tolerances(parse_tolerances(["reports/metrics.json:roc_auc:-0.005"]), METRICS_DIFF),
        "plots": Plots(index="dvc_plots/index.html", figures=("reports/figures/roc.png",)),
    }
    return render_report(**{**args, **overrides})


def test_render_report_tables_in_order():
    md = _render()
    assert "`main` (`abc1234`)" in md
    assert "| `model.alpha` | 1 | 2 |" in md
    assert "| `roc_auc` | 0.9 | 0.88 | -0.02 |" in md
    assert "| `pr_auc` | — | 0.7 | new |" in md
    assert "| `gate.verdict` | pass | fail |  |" in md  # words get no delta
    headings = [line for line in md.splitlines() if line.startswith("## ")]
    assert headings == ["## Params", "## Metrics", "## Gate", "## Tolerances", "## Plots"]
    # top-level metrics before dotted ones, one table per metrics file
    assert md.index("`roc_auc`") < md.index("`segments.Contract.roc_auc_gap`") < md.index("`best_cv_roc_auc`")
    assert "**`reports/tune/metrics.json`**" in md


def test_render_report_gate_verdicts_and_plots():
    md = _render()
    assert "gate: **FAILED** (base: passed)" in md and "  - roc_auc below 0.89" in md
    assert "| `reports/metrics.json:roc_auc:-0.005` | 0.9 | 0.88 | -0.02 | -0.005 | **BROKEN** |" in md
    assert "1 of 1 broken" in md
    assert "(dvc_plots/index.html)" in md and "![roc.png](reports/figures/roc.png)" in md


def test_an_overridden_gate_renders_with_its_reason():
    overridden = PackagedGate(
        passed=False, reasons=("min_roc_auc: too low",), overridden=True, override_reason="hotfix, accepted by J"
    )
    md = "\n".join(render_gates([GateRecord("reports/package.json", overridden, PackagedGate(passed=True))]))
    assert "gate: **failed, OVERRIDDEN (packaged anyway)** (base: passed)" in md
    assert "  - min_roc_auc: too low" in md
    assert "  - overridden (package.override_gate): hotfix, accepted by J" in md
    assert "FAILED" not in md


def test_render_report_without_changes_gate_or_plots():
    md = _render(
        params_diff={},
        gates=[GateRecord("metrics.json", None, None)],
        verdicts=[],
        plots=Plots(index=None, figures=(), problem="`dvc plots diff` failed: boom"),
    )
    assert "No params changed." in md
    assert "No gate recorded (metrics files: `metrics.json`)." in md
    assert "No tolerances given" in md
    assert "`dvc plots diff` failed: boom" in md and "index.html" not in md


def test_parse_gate():
    text = '{"gate": {"passed": false, "reasons": ["low"], "overridden": true, "override_reason": "ok by J"}}'
    metrics = parse_metrics_text(text, source="m.json")
    assert parse_gate(metrics, source="m.json") == PackagedGate(
        passed=False, reasons=("low",), overridden=True, override_reason="ok by J"
    )
    assert parse_gate(parse_metrics_text("roc_auc: 0.9\n", source="m.yaml"), source="m.yaml") is None
    # as written now: words, which `dvc metrics diff` shows as themselves (a JSON boolean's change shows as -1/1)
    written = {"verdict": "fail", "reasons": ["low"], "overridden": "yes", "override_reason": "ok by J"}
    assert parse_gate({"gate": written}, source="m.json") == parse_gate(metrics, source="m.json")
    with pytest.raises(ReportError, match=r"m\.json: gate\.verdict: expected 'pass' or 'fail'"):
        parse_gate({"gate": {"verdict": "yes"}}, source="m.json")
    with pytest.raises(ReportError, match=r"m\.json: gate\.passed: Input should be a valid boolean"):
        parse_gate({"gate": {"passed": 1}}, source="m.json")
    with pytest.raises(ReportError, match=r"m\.json: gate\.reasons: Input should be a valid tuple"):
        parse_gate({"gate": {"passed": True, "reasons": "none"}}, source="m.json")
    with pytest.raises(ReportError, match=r"m\.json: gate: Input should be a valid dictionary"):
        parse_gate({"gate": "passed"}, source="m.json")
    # the key the report used to read (and package never wrote) is refused by name, not silently ignored
    with pytest.raises(ReportError, match=r"m\.json: gate\.override: unknown key"):
        parse_gate({"gate": {"passed": False, "override": "ok by J"}}, source="m.json")
    with pytest.raises(ReportError, match=r"m\.json: cannot parse"):
        parse_metrics_text("{not json", source="m.json")


def test_cli_collects_fail_on_from_repeated_flags():
    args = build_parser().parse_args(["report", "--base", "main", "--fail-on", "a:-1", "b:+1", "--fail-on", "c:-2"])
    assert args.fail_on == ["a:-1", "b:+1", "c:-2"]
    assert str(args.plots_dir) == "dvc_plots" and args.output is None


def test_pr_workflow_reports_with_a_tolerance_and_full_history():
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "pr-report.yml").read_text())
    steps = workflow["jobs"]["report"]["steps"]
    checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0
    report = next(s for s in steps if "tabrepro report" in s.get("run", ""))
    assert "--fail-on roc_auc:-0.005" in report["run"] and "--output report.md" in report["run"]
    assert any("cml comment create --publish report.md" in s.get("run", "") for s in steps)


def test_unchanged_metrics_are_folded_below_the_changed_ones():
    md = _render()
    folded = md.index("<summary>1 unchanged metrics</summary>")
    assert (
        md.index("| `roc_auc` | 0.9 | 0.88 |")
        < folded
        < md.index("| `model` | xgboost | xgboost |")
        < md.index("</details>")
    )
    same = {"m.json": {"roc_auc": {"old": 0.9, "new": 0.9, "diff": 0.0}}}
    md = _render(metrics_diff=same, verdicts=[])
    assert "No metric changed." in md and "<summary>1 unchanged metrics</summary>" in md
