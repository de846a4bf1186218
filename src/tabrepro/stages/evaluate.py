"""evaluate: the test split judged with its uncertainty, against baselines, per segment, explained, and gated.

Writes ``reports/metrics.json`` (metrics with bootstrap CIs, the threshold chosen on val and its policy,
calibration, baselines and the paired difference to the logistic one, segments, the leakage alarm, the promotion
gate's verdict), ``dvc plots`` data, PNG figures, feature importance, per-row predictions with their feature
contributions, and the model card. The gate's verdict is recorded here and enforced by ``package``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from tabrepro.artefacts import EvaluationMetrics, ScoredMetrics, sha256_file
from tabrepro.config.params import EvaluateParams, PathsParams, ReproducibilityParams, read_section
from tabrepro.config.precision import DEFAULT_DECIMALS, rounded_tree
from tabrepro.contract.policy import CostMatrix, Policy, check_gate_keys
from tabrepro.contract.spec import DataContract, load_contract
from tabrepro.errors import ConfigError
from tabrepro.evaluation.baselines import fit_baseline_scores
from tabrepro.evaluation.by_task import Splits, evaluate_task
from tabrepro.evaluation.explain import feature_contributions, group_columns, importance_table, permutation_importance
from tabrepro.evaluation.fairness import fairness_slices
from tabrepro.evaluation.figures import save_evaluation_figures, save_explanation_figures
from tabrepro.evaluation.gate import judge_gate
from tabrepro.evaluation.leakage import single_feature_auc
from tabrepro.evaluation.metrics import (
    choose_threshold,
    classification_metrics,
    confusion_counts,
    cost_points,
    curve_points,
    expected_calibration_error,
    expected_costs,
)
from tabrepro.evaluation.model_card import render_model_card
from tabrepro.evaluation.segments import segment_metrics
from tabrepro.evaluation.task_card import render_task_card
from tabrepro.evaluation.task_figures import save_multiclass_figures, save_regression_figures
from tabrepro.evaluation.uncertainty import bootstrap_ci, paired_difference
from tabrepro.io.splits import read_splits
from tabrepro.io.staging import staged_outputs, write_json
from tabrepro.stages import run_stage
from tabrepro.training.features import split_xy
from tabrepro.training.modeling import load_model

log = logging.getLogger(__name__)

CI_METRICS = {"roc_auc": roc_auc_score, "pr_auc": average_precision_score, "brier": brier_score_loss}


def score_test_split(
    y_val: np.ndarray,
    p_val: np.ndarray,
    y_test: np.ndarray,
    p_test: np.ndarray,
    baselines: dict[str, np.ndarray],
    params: EvaluateParams,
    *,
    cost: CostMatrix,
    decimals: int = DEFAULT_DECIMALS,
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """Metrics of the test scores (with CIs) at the threshold chosen on val, the baselines, and the plot points,
    every number ``rounded`` to ``decimals`` places (the threshold lies between two distinct val scores).

    ``cost`` is the data set's cost matrix (``policy.cost``).
    """
    threshold = choose_threshold(y_val, p_val, policy=params.threshold_policy, cost=cost, decimals=decimals)
    point = classification_metrics(y_test, p_test, threshold=threshold)
    boot = params.bootstrap
    stacked = np.column_stack([p_test, baselines["logistic"]])
    intervals = bootstrap_ci(
        y_test,
        {**dict.fromkeys(CI_METRICS, p_test), "roc_auc_diff": stacked},
        {**CI_METRICS, "roc_auc_diff": paired_difference(roc_auc_score)},
        n=boot.n,
        seed=boot.seed,
        level=boot.level,
    )
    metrics: dict[str, Any] = {}
    for name in CI_METRICS:
        metrics[name], metrics[f"{name}_ci"] = point[name], intervals[name]
    metrics |= {
        "ece": expected_calibration_error(y_test, p_test, bins=params.calibration_bins),
        **{k: point[k] for k in ("log_loss", "accuracy", "f1", "precision", "recall", "threshold")},
        "threshold_policy": params.threshold_policy,
        "expected_cost": float(expected_costs(y_test, p_test, np.array([threshold]), cost)[0]),
        "n": point["n"],
        "positive_rate": point["positive_rate"],
        "vs_logistic": {
            "roc_auc_diff": point["roc_auc"] - float(roc_auc_score(y_test, baselines["logistic"])),
            "roc_auc_diff_ci": intervals["roc_auc_diff"],
        },
        "baselines": {name: _baseline_metrics(y_test, scores) for name, scores in baselines.items()},
        "bootstrap": {"n": boot.n, "seed": boot.seed, "level": boot.level},
    }
    points = curve_points(
        y_test, p_test, threshold=threshold, calibration_bins=params.calibration_bins, decimals=decimals
    )
    points["cost"] = cost_points(y_val, p_val, y_test, p_test, cost, decimals=decimals)
    return at_precision(metrics, threshold=threshold, decimals=decimals), points


def at_precision(metrics: dict[str, Any], *, threshold: float, decimals: int) -> dict[str, Any]:
    """``metrics`` with every number ``rounded``, but the threshold as chosen: ``rounded_between`` gave it more
    places where two val scores are closer than 10**-decimals, and rounding it again could put it on a score."""
    return {**rounded_tree(metrics, decimals), "threshold": threshold}


def _baseline_metrics(y: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    return {
        "roc_auc": float(roc_auc_score(y, scores)),
        "pr_auc": float(average_precision_score(y, scores)),
        "brier": float(brier_score_loss(y, scores)),
        "log_loss": float(log_loss(y, scores, labels=[0, 1])),
    }


def run(
    paths: PathsParams,
    contract: DataContract,
    params: EvaluateParams,
    policy: Policy | None = None,
    *,
    decimals: int = DEFAULT_DECIMALS,
) -> None:
    """``policy`` is the data set's gate and cost matrix (the ``policy`` params section; defaults if absent);
    ``decimals`` the declared precision (``reproducibility.decimals``) of every number written and judged."""
    policy = policy or Policy()
    try:
        check_gate_keys(policy.gate, contract.target.task)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if contract.target.task != "binary":
        run_task(paths, contract, params, policy, decimals=decimals)
        return
    model, meta = load_model(paths.model)
    features, prepared = read_splits(paths.features), read_splits(paths.prepared)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (
        split_xy(features[s], contract) for s in ("train", "val", "test")
    )
    p_val, p_test = model.predict_proba(x_val)[:, 1], model.predict_proba(x_test)[:, 1]
    baselines = fit_baseline_scores(x_train, y_train, x_test)
    metrics, points = score_test_split(
        y_val, p_val, y_test, p_test, baselines, params, cost=policy.cost, decimals=decimals
    )
    test_ids = features["test"][contract.key_column]
    test_rows = prepared["test"].set_index(contract.key_column).loc[test_ids].reset_index()
    metrics["segments"] = segment_metrics(
        test_rows,
        y_test,
        p_test,
        columns=contract.segments,
        threshold=metrics["threshold"],
        min_rows=params.segment_min_rows,
    )
    single = rounded_tree(single_feature_auc(prepared["train"], prepared["test"], contract), decimals)
    top = next(iter(single))
    metrics["leakage"] = {"max_single_feature": top, "max_single_feature_auc": single[top]}
    metrics["fairness"] = fairness_slices(
        test_rows,
        y_test,
        p_test,
        task="binary",
        columns=contract.sensitive,
        threshold=metrics["threshold"],
        boot=params.bootstrap,
    )
    # the segments rounded too; judged on the numbers written, in the layout package and `tabrepro report` read
    scored = ScoredMetrics.model_validate(at_precision(metrics, threshold=metrics["threshold"], decimals=decimals))
    record = EvaluationMetrics(
        **dict(scored), gate=judge_gate(scored, policy.gate), model=meta.family, pipeline_sha256=meta.sha256
    )

    groups = group_columns(list(meta.feature_names), list(contract.features))
    contributions = feature_contributions(model, x_test, groups)
    permutation = permutation_importance(
        model, x_test, y_test, groups, repeats=params.permutation_repeats, seed=params.bootstrap.seed
    )
    importance = importance_table(permutation, contributions, decimals=decimals)
    predictions = pd.DataFrame(
        {
            contract.key_column: test_ids.to_numpy(),
            "target": y_test,
            "probability": p_test,
            "label": (p_test >= record.threshold).astype("int8"),
            **{f"contribution__{k}": v for k, v in (contributions or {}).items()},
        }
    )
    card = render_model_card(
        record,
        meta,
        contract,
        params,
        policy=policy,
        data_sha256=sha256_file(contract.source),
        importance=importance,
    )
    outputs = (paths.metrics, paths.plots, paths.figures, paths.predictions, paths.explain, paths.model_card)
    with staged_outputs(*outputs, withhold=True) as (
        metrics_path,
        plots_dir,
        figures_dir,
        predictions_path,
        explain_dir,
        card_path,
    ):
        plots_dir.mkdir()
        for name, rows in points.items():
            write_json(Path(plots_dir) / f"{name}.json", rows)
        confusion = confusion_counts(y_test, p_test, threshold=record.threshold)
        save_evaluation_figures(points, confusion, figures_dir, threshold=record.threshold)
        save_explanation_figures(importance, contributions, figures_dir)
        predictions.to_parquet(predictions_path, index=False)
        write_json(explain_dir / "importance.json", importance)
        write_json(explain_dir / "single_feature_auc.json", single)
        card_path.write_text(card, encoding="utf-8")
        write_json(metrics_path, record.model_dump(mode="json"))
    _log_summary(record)


def run_task(
    paths: PathsParams, contract: DataContract, params: EvaluateParams, policy: Policy, *, decimals: int
) -> None:
    """``run`` for a regression or a multiclass target (``tabrepro.evaluation.by_task``): metrics.json, the plot
    rows, PNG figures, per-row predictions, the single-feature scores and the model card."""
    model, meta = load_model(paths.model)
    splits = _task_splits(paths, contract)
    result = evaluate_task(model, meta, contract, splits, params, policy, decimals=decimals)
    card = render_task_card(result.record, meta, contract, policy=policy, data_sha256=sha256_file(contract.source))
    outputs = (paths.metrics, paths.plots, paths.figures, paths.predictions, paths.explain, paths.model_card)
    with staged_outputs(*outputs, withhold=True) as (metrics_path, plots_dir, figures_dir, preds, explain, card_path):
        plots_dir.mkdir()
        for name, rows in result.points.items():
            write_json(Path(plots_dir) / f"{name}.json", rows)
        if contract.target.task == "regression":
            save_regression_figures(result.points, figures_dir, unit=contract.target.unit)
        else:
            labels = contract.target.labels
            save_multiclass_figures(splits.y_test, result.output, result.points, labels, figures_dir)
        result.predictions.to_parquet(preds, index=False)
        Path(explain).mkdir(parents=True, exist_ok=True)
        write_json(Path(explain) / "single_feature.json", result.single_feature)
        card_path.write_text(card, encoding="utf-8")
        write_json(metrics_path, result.record.model_dump(mode="json"))
    gate = result.record.gate
    log.info("%s evaluated; promotion gate %s", contract.target.task, "passed" if gate.passed else "FAILED")
    if not gate.passed:
        log.warning("package will refuse this model:\n  %s", "\n  ".join(gate.reasons))


def _task_splits(paths: PathsParams, contract: DataContract) -> Splits:
    """Train and test matrices with the target as prepared (regression float64, multiclass the class index)."""
    features, prepared = read_splits(paths.features), read_splits(paths.prepared)
    dtype = np.float64 if contract.target.task == "regression" else np.int64
    (x_train, _), (x_test, _) = (split_xy(features[s], contract) for s in ("train", "test"))
    y_train, y_test = (features[s][contract.target.column].to_numpy(dtype=dtype) for s in ("train", "test"))
    test_ids = features["test"][contract.key_column]
    test_rows = prepared["test"].set_index(contract.key_column).loc[test_ids].reset_index()
    return Splits(x_train, y_train, x_test, y_test, test_rows, prepared)


def _log_summary(metrics: EvaluationMetrics) -> None:
    ci = metrics.roc_auc_ci
    log.info(
        "test ROC-AUC %.4f [%.4f, %.4f] (logistic baseline %+.4f), PR-AUC %.4f, ECE %.4f; threshold %.3f (%s, on val)",
        metrics.roc_auc,
        ci.lo,
        ci.hi,
        metrics.vs_logistic.roc_auc_diff,
        metrics.pr_auc,
        metrics.ece,
        metrics.threshold,
        metrics.threshold_policy,
    )
    gate = metrics.gate
    if gate.passed:
        log.info("promotion gate passed (%d checks)", len(gate.checks))
    else:
        log.warning("promotion gate FAILED; package will refuse this model:\n  %s", "\n  ".join(gate.reasons))


def _main(params: dict[str, Any]) -> None:
    run(
        read_section(params, "paths", PathsParams),
        load_contract(params.get("data")),
        read_section(params, "evaluate", EvaluateParams),
        read_section(params, "policy", Policy),
        decimals=read_section(params, "reproducibility", ReproducibilityParams).decimals,
    )


def main() -> None:
    run_stage("evaluate", _main)


if __name__ == "__main__":
    main()
