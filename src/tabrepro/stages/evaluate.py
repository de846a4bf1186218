"""evaluate: threshold chosen on val; metrics, plot data, figures and predictions on the test split."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from tabrepro.artifacts import staged_outputs, write_json
from tabrepro.contract import DataContract, load_contract
from tabrepro.features import split_xy
from tabrepro.figures import save_evaluation_figures
from tabrepro.metrics import choose_threshold, classification_metrics, confusion_counts, curve_points
from tabrepro.modeling import load_model
from tabrepro.params import EvaluateParams, PathsParams, read_section
from tabrepro.stages import run_stage
from tabrepro.stages.featurize import read_splits

log = logging.getLogger(__name__)


def evaluate_predictions(
    y_val: Any, p_val: Any, y_test: Any, p_test: Any, params: EvaluateParams
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """Metrics of the test scores at the threshold chosen on val, and the plot points."""
    threshold = choose_threshold(y_val, p_val, policy=params.threshold_policy)
    metrics = classification_metrics(y_test, p_test, threshold=threshold)
    metrics["threshold_policy"] = params.threshold_policy
    points = curve_points(y_test, p_test, threshold=threshold, calibration_bins=params.calibration_bins)
    return metrics, points


def run(paths: PathsParams, contract: DataContract, params: EvaluateParams) -> None:
    model, meta = load_model(paths.model)
    splits = read_splits(paths.features)
    x_val, y_val = split_xy(splits["val"], contract)
    x_test, y_test = split_xy(splits["test"], contract)
    p_val = model.predict_proba(x_val)[:, 1]
    p_test = model.predict_proba(x_test)[:, 1]
    metrics, points = evaluate_predictions(y_val, p_val, y_test, p_test, params)
    metrics = {**metrics, "model": meta["family"], "model_sha256": meta["sha256"]}
    predictions = pd.DataFrame(
        {
            contract.id_column: splits["test"][contract.id_column],
            "target": y_test,
            "probability": p_test,
            "label": (p_test >= metrics["threshold"]).astype("int8"),
        }
    )
    confusion = confusion_counts(y_test, p_test, threshold=metrics["threshold"])
    outputs = (paths.metrics, paths.plots, paths.figures, paths.predictions)
    with staged_outputs(*outputs) as (metrics_path, plots_dir, figures_dir, predictions_path):
        plots_dir.mkdir()
        for name, rows in points.items():
            write_json(Path(plots_dir) / f"{name}.json", rows)
        save_evaluation_figures(points, confusion, figures_dir)
        predictions.to_parquet(predictions_path, index=False)
        write_json(metrics_path, metrics)
    log.info(
        "test ROC-AUC %.4f, PR-AUC %.4f, F1 %.4f at threshold %.3f (chosen on val)",
        metrics["roc_auc"],
        metrics["pr_auc"],
        metrics["f1"],
        metrics["threshold"],
    )


def _main(params: dict[str, Any]) -> None:
    run(
        read_section(params, "paths", PathsParams),
        load_contract(params.get("data")),
        read_section(params, "evaluate", EvaluateParams),
    )


def main() -> None:
    run_stage("evaluate", _main)


if __name__ == "__main__":
    main()
