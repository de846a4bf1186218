"""prepare: raw table -> parsed, validated, stratified train/val/test Parquet and a data-quality report."""

from __future__ import annotations

import logging
import math
from typing import Any

import pandas as pd
from sklearn.model_selection import train_test_split

from tabrepro.artefacts import DataQuality, sha256_file
from tabrepro.config.params import PathsParams, SplitParams, TuneParams, read_section
from tabrepro.contract.spec import DataContract, load_contract
from tabrepro.contract.table import check_table
from tabrepro.errors import DataError
from tabrepro.io.raw import read_raw
from tabrepro.io.splits import SPLITS
from tabrepro.io.staging import staged_outputs, write_json
from tabrepro.io.targets import class_codes, encode_target, regression_bins, regression_strata, target_summary
from tabrepro.stages import run_stage

log = logging.getLogger(__name__)


def clean_table(
    raw: pd.DataFrame, contract: DataContract, *, source: str, row_label: str = "row"
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Parse and judge ``raw`` by the contract's grammar (a ``ContractViolation`` lists every problem, its rows
    named by ``raw``'s index and ``row_label``); refuse or drop unlabelled rows, as ``data.target.missing`` says;
    encode the target per its task (``io.targets.encode_target``: binary 1 (positive) / 0, multiclass the class
    index, regression the value).

    Returns the clean frame (id, features, target; fresh index) and the dropped-row counts by reason.
    """
    parsed = check_table(raw, contract, source=source, row_label=row_label)
    target = contract.target.column
    labelled = _labelled_rows(parsed, contract, source=source, row_label=row_label)
    clean = parsed.loc[labelled].reset_index(drop=True)
    clean = clean.assign(**{target: encode_target(clean[target], contract.target, source=source)})
    return clean, {"target missing": int((~labelled).sum())}


def _labelled_rows(parsed: pd.DataFrame, contract: DataContract, *, source: str, row_label: str) -> pd.Series:
    """Which rows have a label. Unlabelled rows are a DataError naming them (``target.missing: refuse``) or are
    dropped with a WARNING that counts and names them (``target.missing: drop``)."""
    target = contract.target.column
    labelled = parsed[target].notna()
    missing = parsed.index[~labelled]
    if missing.empty:
        return labelled
    shown = ", ".join(str(n) for n in missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
    where = f"{len(missing)} {row_label}{'s' if len(missing) > 1 else ''} ({shown})"
    if contract.target.missing == "refuse":
        raise DataError(
            f"{source}: target {target!r} is missing on {where}; label them, or set data.target.missing: drop "
            "to drop such rows"
        )
    log.warning("%s: dropped %s with no %r label (data.target.missing: drop)", source, where, target)
    return labelled


def min_class_rows(split: SplitParams, *, cv_folds: int) -> int:
    """The rows each class needs for the stratified split and the CV: whatever the rounding, the train split then
    holds at least ``cv_folds`` of it (one per fold) and val and test at least one (2 before rounding) each."""
    return max(math.ceil((cv_folds + 1) / split.train), math.ceil(2 / split.val), math.ceil(2 / split.test))


def check_class_counts(
    clean: pd.DataFrame, contract: DataContract, *, source: str, split: SplitParams, cv_folds: int
) -> None:
    """Refuse a table with a class too small for the split and the CV: a DataError naming every class's rows
    (a regression target has no classes: its quantile bins are sized by ``split_data``)."""
    target, needed = contract.target, min_class_rows(split, cv_folds=cv_folds)
    if not target.is_classification:
        return
    labels = class_codes(target)
    counts = {label: int((clean[target.column] == code).sum()) for label, code in labels.items()}
    small = [f"class {label!r} has {n} rows" for label, n in counts.items() if n < needed]
    if small:
        raise DataError(
            f"{source}: {'; '.join(small)} (of {len(clean)} labelled rows: "
            + ", ".join(f"{label!r} {n}" for label, n in counts.items())
            + f"); the {split.train:g}/{split.val:g}/{split.test:g} split and the {cv_folds}-fold CV need at least "
            f"{needed} rows of each class"
        )


def split_data(
    df: pd.DataFrame, *, target: str, train: float, val: float, test: float, seed: int, bins: int | None = None
) -> dict[str, pd.DataFrame]:
    """Stratified train/val/test split with the given ratios (summing to 1); each split keeps its row order.

    Classification stratifies on the target; a regression target (``bins`` given) on its ``bins`` quantile bins.
    """
    strata = df[target] if bins is None else regression_strata(df[target], bins=bins)
    try:
        rest, test_df = train_test_split(df, test_size=test, stratify=strata, random_state=seed)
        rest_strata = None if strata is None else strata.loc[rest.index]
        train_df, val_df = train_test_split(
            rest, test_size=val / (train + val), stratify=rest_strata, random_state=seed
        )
    except ValueError as exc:
        raise DataError(f"cannot split {len(df)} rows with ratios train={train} val={val} test={test}: {exc}") from None
    return {
        name: part.sort_index().reset_index(drop=True)
        for name, part in zip(SPLITS, (train_df, val_df, test_df), strict=True)
    }


def summarise_quality(
    raw: pd.DataFrame,
    clean: pd.DataFrame,
    splits: dict[str, pd.DataFrame],
    *,
    contract: DataContract,
    dropped: dict[str, int],
) -> dict[str, Any]:
    """The data-quality report: rows in/out and why, missing values, ignored columns, and the target per split
    (``class_balance``: binary the positive rate, multiclass every class's share, regression min/quartiles/max/mean).
    """
    target = contract.target.column
    return {
        "contract": contract.name,
        "rows": {"in": len(raw), "out": len(clean), "dropped": dropped},
        "ignored_columns": [c for c in raw.columns if c not in contract.columns],
        "missing_values": {c: int(clean[c].isna().sum()) for c in contract.feature_names},
        "class_balance": {name: target_summary(part[target], contract.target) for name, part in splits.items()},
    }


def run(
    paths: PathsParams,
    contract: DataContract,
    split: SplitParams,
    *,
    cv_folds: int = TuneParams.model_fields["cv_folds"].default,
) -> None:
    """Read the raw source, clean and split it, and publish the splits and the report together.

    ``cv_folds`` (``tune.cv_folds``) sizes the smallest class the table may have; nothing is written otherwise.
    """
    raw = read_raw(contract.source, fmt=contract.format, contract=contract, require=False)
    row_label = "line" if contract.format == "csv" else "row"
    clean, dropped = clean_table(raw, contract, source=contract.source, row_label=row_label)
    check_class_counts(clean, contract, source=contract.source, split=split, cv_folds=cv_folds)
    bins = None
    if not contract.target.is_classification:
        bins = regression_bins(len(clean), needed=min_class_rows(split, cv_folds=cv_folds))
        log.info("stratifying the regression target %r on %d quantile bins", contract.target.column, bins)
    splits = split_data(
        clean,
        target=contract.target.column,
        train=split.train,
        val=split.val,
        test=split.test,
        seed=split.seed,
        bins=bins,
    )
    report = DataQuality.model_validate(
        {
            **summarise_quality(raw, clean, splits, contract=contract, dropped=dropped),
            "source_sha256": sha256_file(contract.source),
        }
    )
    with staged_outputs(paths.prepared, paths.data_quality, withhold=True) as (prepared_dir, report_path):
        prepared_dir.mkdir()
        for name, part in splits.items():
            part.to_parquet(prepared_dir / f"{name}.parquet", index=False)
        write_json(report_path, report.model_dump(mode="json"))
    log.info(
        "prepared %d rows (%s) from %s",
        len(clean),
        ", ".join(f"{k} {len(v)}" for k, v in splits.items()),
        contract.source,
    )


def _main(params: dict[str, Any]) -> None:
    run(
        read_section(params, "paths", PathsParams),
        load_contract(params.get("data")),
        read_section(params, "split", SplitParams),
        cv_folds=read_section(params, "tune", TuneParams).cv_folds,
    )


def main() -> None:
    run_stage("prepare", _main)


if __name__ == "__main__":
    main()
