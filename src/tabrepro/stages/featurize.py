"""featurize: fit the contract's preprocessor on train only, transform every split, save the drift reference."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from sklearn.compose import ColumnTransformer

from tabrepro.artefacts import ReferenceStats
from tabrepro.config.params import FeaturesParams, PathsParams, read_section
from tabrepro.contract.spec import DataContract, load_contract
from tabrepro.io.persistence import dump_skops
from tabrepro.io.splits import read_splits
from tabrepro.io.staging import staged_outputs, write_json
from tabrepro.monitoring.drift import compute_reference_stats
from tabrepro.stages import run_stage
from tabrepro.training.features import build_preprocessor, transform_frame

log = logging.getLogger(__name__)


def fit_transform_splits(
    splits: dict[str, pd.DataFrame], contract: DataContract, params: FeaturesParams
) -> tuple[ColumnTransformer, dict[str, pd.DataFrame]]:
    """Fit the preprocessor on ``splits['train']`` and transform every split.

    Each output frame holds the key column (the id, or the row's number in the source), the float32 features and
    the target, in that order.
    """
    preprocessor = build_preprocessor(contract, numeric_impute=params.numeric_impute, drop=params.drop).fit(
        splits["train"]
    )
    keys = [contract.key_column, contract.target.column]
    matrices = {
        name: pd.concat([df[keys[:1]], transform_frame(preprocessor, df), df[keys[1:]]], axis=1)
        for name, df in splits.items()
    }
    return preprocessor, matrices


def run(paths: PathsParams, contract: DataContract, params: FeaturesParams) -> None:
    splits = read_splits(paths.prepared)
    preprocessor, matrices = fit_transform_splits(splits, contract, params)
    reference = ReferenceStats.model_validate(
        compute_reference_stats(splits["train"], contract, bins=params.reference_bins)
    )
    outputs = (paths.features, paths.preprocessor, paths.reference_stats)
    with staged_outputs(*outputs, withhold=True) as (features_dir, preprocessor_path, reference_path):
        features_dir.mkdir()
        for name, frame in matrices.items():
            frame.to_parquet(features_dir / f"{name}.parquet", index=False)
        dump_skops(preprocessor, preprocessor_path)
        write_json(reference_path, reference.model_dump(mode="json"))
    log.info("featurized %d input features into %d columns", len(contract.features), matrices["train"].shape[1] - 2)


def _main(params: dict[str, Any]) -> None:
    run(
        read_section(params, "paths", PathsParams),
        load_contract(params.get("data")),
        read_section(params, "features", FeaturesParams),
    )


def main() -> None:
    run_stage("featurize", _main)


if __name__ == "__main__":
    main()
