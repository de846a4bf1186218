"""Training on Dask (``train.engine: dask``): the preprocessor's statistics from Dask aggregates, XGBoost on
``xgboost.dask``, and a result that is an ordinary fitted preprocessor and an ordinary ``XGBClassifier``.

The preprocessor is the contract's ``ColumnTransformer`` (``features.build_preprocessor``), never a Dask copy of
it: its statistics are computed over the partitions (the exact median by histogram refinement, the mean as
sum / count, the most frequent value from merged counts; one-hot levels come from the contract) and installed by
fitting the same object on one design row that carries them, so that ``transform`` and the skl2onnx export see a
preprocessor fitted by scikit-learn itself. The model is trained with ``DaskXGBClassifier`` and handed back as a
plain ``XGBClassifier`` (the booster's own JSON), so ``package`` exports the same single ONNX graph.
"""

# dask and distributed leave most of their API unannotated (Client, LocalCluster, compute, persist, wait,
# map_partitions, from_map): every call of theirs would need its own ignore.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import glob
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from dask.base import compute, persist
from dask.delayed import delayed
from distributed import Client, LocalCluster, wait
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import OneHotEncoder
from xgboost import XGBClassifier
from xgboost.dask import DaskXGBClassifier

from tabrepro.errors import ConfigError
from tabrepro.training.features import transform_frame
from tabrepro.training.modeling import FitResult, eval_curves

_BINS = 4096  # buckets per refinement pass of the exact median
_GATHER = 200_000  # values few enough to bring to the client and sort


@contextmanager
def dask_client(
    scheduler: str | None,
    *,
    workers: int,
    threads: int,
    memory_limit: str,
    processes: bool = True,
    connect_timeout: float = 20,
) -> Iterator[Client]:
    """A client of the cluster at ``scheduler``, or of a ``LocalCluster`` of ``workers`` started (and stopped) here."""
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=connect_timeout)
        except (OSError, TimeoutError) as exc:
            raise ConfigError(
                f"params.yaml: train.scheduler: no Dask scheduler answers at {scheduler!r} "
                f"within {connect_timeout:g} s ({exc})"
            ) from None
        with client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=threads,
            memory_limit=memory_limit,
            processes=processes,
            dashboard_address=":0",
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def read_table(path: str | Path, *, partitions: int) -> dd.DataFrame:
    """A Parquet file, folder or glob as a Dask frame of at least ``partitions`` partitions, so that every worker
    holds a share of the rows XGBoost trains on. Files with fewer row groups than that are read as row slices,
    each slice its own task (splitting partitions later would leave every slice on the worker that read it)."""
    with dask.config.set({"dataframe.convert-string": False}):  # text as pandas reads it (``str``, NaN missing)
        table: dd.DataFrame = dd.read_parquet(str(path))
        if table.npartitions >= partitions:
            return table
        files = _parquet_files(Path(path))
        per_file = -(-partitions // len(files))
        slices = []
        for file in files:
            bounds = np.linspace(0, pq.ParquetFile(file).metadata.num_rows, per_file + 1).astype(int)
            slices += [(str(file), int(a), int(b)) for a, b in itertools.pairwise(bounds) if b > a]
        sliced: dd.DataFrame = dd.from_map(_read_rows, slices, meta=table._meta)
        return sliced


def _parquet_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(path.glob("*.parquet")) if path.is_dir() else sorted(Path(p) for p in glob.glob(str(path)))


def _read_rows(where: tuple[str, int, int]) -> pd.DataFrame:
    path, start, stop = where
    return pq.read_table(path).slice(start, stop - start).to_pandas().set_axis(pd.RangeIndex(start, stop))


def fit_preprocessor(preprocessor: ColumnTransformer, table: dd.DataFrame) -> ColumnTransformer:
    """Fit (a clone of) the UNFITTED ``preprocessor`` with statistics computed over ``table``'s partitions."""
    fitted = clone(preprocessor)
    row: dict[str, pd.Series] = {c: pd.Series([np.nan]) for c in table.columns}  # every column, as at fit
    statistics: dict[str, np.ndarray] = {}
    for name, transformer, columns in fitted.transformers:
        if isinstance(transformer, SimpleImputer):
            statistics[name] = np.array([column_statistic(table[c], transformer.strategy) for c in columns])
            row.update({c: pd.Series([v], dtype=np.float64) for c, v in zip(columns, statistics[name], strict=True)})
        elif isinstance(transformer, OneHotEncoder) and not isinstance(transformer.categories, str):
            levels = transformer.categories  # from the contract: nothing to learn from the data
            row.update({c: pd.Series(list(v[:1]), dtype=table[c].dtype) for c, v in zip(columns, levels, strict=True)})
        else:
            raise ConfigError(f"train.engine: dask cannot compute the statistics of {name!r} ({transformer!r})")
    fitted.fit(pd.DataFrame(row))  # one design row: each imputer's statistic is that row's value, exactly
    for name, values in statistics.items():
        imputer = fitted.named_transformers_[name]
        imputer.statistics_ = values.astype(imputer.statistics_.dtype)
    return fitted


def column_statistic(column: dd.Series, strategy: str) -> float:
    """One column's imputation value, as ``SimpleImputer(strategy)`` would compute it in memory (NaN when empty)."""
    values = column.dropna()
    if strategy == "mean":
        total, count = compute(values.sum(), values.count())
        return float(total) / count if count else float("nan")
    if strategy == "most_frequent":
        counts = values.value_counts(split_out=1).compute()  # a tree reduction of per-partition counts
        return float(counts.index[counts == counts.max()].min()) if len(counts) else float("nan")
    if strategy == "median":
        return exact_median(values)
    raise ConfigError(f"train.engine: dask has no Dask aggregate for imputation strategy {strategy!r}")


def exact_median(values: dd.Series, *, gather: int = _GATHER) -> float:
    """The median of the non-missing ``values``, exactly as ``numpy.median`` (mean of the two middle order
    statistics), without bringing more than ``gather`` values to the client."""
    values = values.dropna().astype("float64")
    count, low, high = compute(values.count(), values.min(), values.max())
    n = int(count)
    if n == 0:
        return float("nan")
    ranks = sorted({(n - 1) // 2, n // 2})
    middle = [order_statistic(values, k, low=float(low), high=float(high), gather=gather) for k in ranks]
    return (middle[0] + middle[-1]) / 2


def order_statistic(values: dd.Series, k: int, *, low: float, high: float, gather: int = _GATHER) -> float:
    """The ``k``-th smallest (0-based) of ``values`` in ``[low, high]``: bucket counts narrow the window pass by
    pass (to the bucket holding rank ``k``, then to that bucket's own min and max) until it is small enough to sort."""
    while True:
        if low == high:
            return low
        window = values[values.between(low, high)]  # both ends included
        edges = np.linspace(low, high, _BINS + 1)
        counts, lows, highs = _merge(compute(*[delayed(_bucket)(p, edges) for p in window.to_delayed()]))
        total = int(counts.sum())
        if total <= gather:
            return float(np.sort(window.compute().to_numpy())[k])
        before = np.cumsum(counts)
        bucket = int(np.searchsorted(before, k, side="right"))
        k -= int(before[bucket - 1]) if bucket else 0
        if (lows[bucket], highs[bucket]) == (low, high):  # no progress (a window of a few ulps): sort what is left
            return float(np.sort(window.compute().to_numpy())[k])
        low, high = float(lows[bucket]), float(highs[bucket])


def _bucket(part: pd.Series, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count, min and max of one partition's values in each bucket of ``edges`` (the last bucket is closed)."""
    values = part.to_numpy(dtype=np.float64)
    index = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)
    counts = np.bincount(index, minlength=len(edges) - 1)
    lows, highs = np.full(len(edges) - 1, np.inf), np.full(len(edges) - 1, -np.inf)
    np.minimum.at(lows, index, values)
    np.maximum.at(highs, index, values)
    return counts, lows, highs


def _merge(parts: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]) -> tuple[np.ndarray, ...]:
    counts, lows, highs = zip(*parts, strict=True)
    return np.sum(counts, axis=0), np.min(lows, axis=0), np.max(highs, axis=0)


def transform_partitions(preprocessor: ColumnTransformer, table: dd.DataFrame, *, target: str) -> dd.DataFrame:
    """The fitted preprocessor applied partition by partition: float32 columns named as its output, then the
    ``target`` column (one collection: features and labels come from the same task of each partition)."""
    names = [str(n) for n in preprocessor.get_feature_names_out()]
    meta = pd.DataFrame({n: pd.Series(dtype=np.float32) for n in names}).assign(**{target: table._meta[target]})
    transformed: dd.DataFrame = table.map_partitions(_transform, preprocessor, target, meta=meta)
    return transformed


def _transform(part: pd.DataFrame, preprocessor: ColumnTransformer, target: str) -> pd.DataFrame:
    return transform_frame(preprocessor, part).assign(**{target: part[target]})


def fit_xgboost(
    client: Client,
    estimator: XGBClassifier,
    train: dd.DataFrame,
    val: dd.DataFrame,
    *,
    target: str,
    early_stopping_rounds: int | None = None,
) -> FitResult:
    """``fit_model`` on Dask, on the features and ``target`` of ``transform_partitions``: early-stop on val,
    refit with exactly the best number of rounds, and return the model as a plain ``XGBClassifier`` (without
    feature names, as the in-memory engine fits it on arrays)."""
    params = {k: v for k, v in estimator.get_params().items() if v is not None}
    # In worker memory before XGBoost starts, features and labels split from ONE persisted frame: when features
    # and labels were two collections over the same Parquet reads, tasks failed with "lost dependencies" (seen
    # with xgboost 3.2, dask 2026.8, on a million rows and more).
    train, val = persist(train, val)
    wait([train, val])
    xy_train, xy_val = ((frame.drop(columns=[target]), frame[target]) for frame in (train, val))
    probe = DaskXGBClassifier(**params, early_stopping_rounds=early_stopping_rounds)
    probe.client = client
    probe.fit(*xy_train, eval_set=[xy_train, xy_val], verbose=False)
    best = int(probe.best_iteration) if early_stopping_rounds is not None else None
    final = probe
    if best is not None:
        final = DaskXGBClassifier(**{**params, "n_estimators": best + 1})
        final.client = client
        final.fit(*xy_train, verbose=False)
    return FitResult(model=to_local(final), curves=eval_curves(probe), best_iteration=best)


def to_local(model: DaskXGBClassifier) -> XGBClassifier:
    """The Dask model's booster in an ordinary ``XGBClassifier``, through XGBoost's own JSON (no pickle)."""
    booster = model.get_booster()
    booster.feature_names, booster.feature_types = None, None
    local = XGBClassifier()
    local.load_model(bytearray(booster.save_raw(raw_format="json")))
    return local


def predict_positive(model: XGBClassifier, features: dd.DataFrame) -> dd.Series:
    """P(positive) of the plain model, partition by partition (the probabilities, not the features, come back)."""
    positive: dd.Series = features.map_partitions(_positive, model, meta=("p", "f8"))
    return positive


def _positive(part: pd.DataFrame, model: XGBClassifier) -> pd.Series:
    return pd.Series(model.predict_proba(part.to_numpy(dtype=np.float32))[:, 1], index=part.index, name="p")


def preprocessor_differences(ours: ColumnTransformer, theirs: ColumnTransformer, *, rtol: float = 1e-9) -> list[str]:
    """Where two fitted preprocessors differ: output columns, or a statistic beyond float rounding (``rtol``)."""
    names = [list(p.get_feature_names_out()) for p in (ours, theirs)]
    if names[0] != names[1]:
        return [f"output columns differ: {names[0]} vs {names[1]}"]
    problems = []
    for name, transformer, columns in ours.transformers_:
        if not isinstance(transformer, SimpleImputer):
            continue
        mine, other = transformer.statistics_, theirs.named_transformers_[name].statistics_
        for column, a, b in zip(columns, mine, other, strict=True):
            if not np.isclose(a, b, rtol=rtol, atol=0, equal_nan=True):
                problems.append(f"{column}: {transformer.strategy} {a!r} on Dask, {b!r} in the saved preprocessor")
    return problems
