"""Training on Dask, the parts that need no cluster: the preprocessing statistics from Dask aggregates (run on
dask's synchronous scheduler) equal scikit-learn's in-memory fit, and the engine's refusals name the option."""

from __future__ import annotations

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pydantic
import pytest

from tabrepro.config.params import ModelParams, PathsParams, SplitParams, TrainParams
from tabrepro.errors import ConfigError
from tabrepro.io.raw import read_raw
from tabrepro.stages.prepare import clean_table, split_data
from tabrepro.stages.train import fit_on_dask
from tabrepro.training import distributed
from tabrepro.training.features import build_preprocessor, transform_frame
from tabrepro.training.modeling import build_model
from tests.conftest import REPO


@pytest.fixture(autouse=True)
def _synchronous():
    with dask.config.set(scheduler="synchronous"):
        yield


@pytest.fixture(scope="module")
def telco_train() -> pd.DataFrame:
    """The train split of the full Telco table, as the prepare stage makes it with the default params."""
    from tabrepro.config.params import load_params
    from tabrepro.contract.spec import load_contract

    params = load_params(REPO / "params.yaml")
    contract = load_contract({**params["data"], "source": str(REPO / params["data"]["source"])})
    clean, _ = clean_table(read_raw(contract.source, fmt="csv"), contract, source="telco", row_label="line")
    split = SplitParams.model_validate(params["split"])
    return split_data(clean, target=contract.target.column, **split.model_dump())["train"]


def _series(values: np.ndarray, partitions: int) -> dd.Series:
    return dd.from_pandas(pd.Series(values), npartitions=partitions)


@pytest.mark.parametrize("n", [1, 2, 999, 1000, 4001])
@pytest.mark.parametrize("gather", [5, 1_000_000])
def test_exact_median_equals_numpy_through_refinement(n, gather):
    rng = np.random.default_rng(n)
    values = np.round(rng.lognormal(size=n) * 100, 1)  # rounded: many ties, as in money columns
    values[::7] = np.nan
    expected = np.nanmedian(values) if np.isfinite(values).any() else np.nan
    got = distributed.exact_median(_series(values, 4 if n > 8 else 1), gather=gather)
    assert got == expected or (np.isnan(expected) and np.isnan(got))


def test_exact_median_of_an_all_missing_column_is_nan():
    assert np.isnan(distributed.exact_median(_series(np.full(10, np.nan), 3)))


def test_order_statistic_resolves_a_heavy_tie_without_gathering():
    values = np.r_[np.full(5000, 3.25), np.arange(100.0)]  # one value holds most ranks
    got = [distributed.order_statistic(_series(values, 5), k, low=0.0, high=99.0, gather=10) for k in (0, 4, 4000)]
    assert got == list(np.sort(values)[[0, 4, 4000]])


def test_most_frequent_breaks_ties_with_the_smallest_value_like_scikit_learn():
    values = pd.Series([1.0, 0.0, 1.0, 0.0, np.nan, np.nan, np.nan])
    assert distributed.column_statistic(dd.from_pandas(values, npartitions=3), "most_frequent") == 0.0
    assert np.isnan(distributed.column_statistic(dd.from_pandas(values[4:], npartitions=1), "mean"))


@pytest.mark.parametrize("strategy", ["median", "mean"])
def test_dask_statistics_equal_the_in_memory_fit_on_telco(telco_contract, telco_train, strategy):
    unfitted = build_preprocessor(telco_contract, numeric_impute=strategy)
    in_memory = build_preprocessor(telco_contract, numeric_impute=strategy).fit(telco_train)
    on_dask = distributed.fit_preprocessor(unfitted, dd.from_pandas(telco_train, npartitions=7))
    for name in ("num", "bool"):
        ours, theirs = on_dask.named_transformers_[name].statistics_, in_memory.named_transformers_[name].statistics_
        if strategy == "median" or name == "bool":
            np.testing.assert_array_equal(ours, theirs)  # order statistics and counts: exact
        else:
            np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)  # a sum in another order
    assert distributed.preprocessor_differences(on_dask, in_memory) == []
    assert list(on_dask.get_feature_names_out()) == list(in_memory.get_feature_names_out())
    pd.testing.assert_frame_equal(transform_frame(on_dask, telco_train), transform_frame(in_memory, telco_train))
    with pytest.raises(Exception, match=r"(?i)not fitted"):
        unfitted.transform(telco_train)  # the caller's object is left unfitted: a clone is fitted


def test_a_differing_statistic_is_named_with_its_column(telco_contract, telco_train):
    in_memory = build_preprocessor(telco_contract).fit(telco_train)
    shifted = build_preprocessor(telco_contract).fit(telco_train.assign(TotalCharges=telco_train.TotalCharges + 1))
    assert distributed.preprocessor_differences(shifted, in_memory) == [
        f"TotalCharges: median {shifted.named_transformers_['num'].statistics_[2]!r} on Dask, "
        f"{in_memory.named_transformers_['num'].statistics_[2]!r} in the saved preprocessor"
    ]


def test_partitioned_transform_equals_the_in_memory_transform(telco_contract, telco_train):
    fitted = build_preprocessor(telco_contract).fit(telco_train)
    table = dd.from_pandas(telco_train, npartitions=4)
    got = distributed.transform_partitions(fitted, table, target="Churn").compute()
    pd.testing.assert_frame_equal(got, transform_frame(fitted, telco_train).assign(Churn=telco_train.Churn))


def test_a_single_file_is_read_as_one_partition_per_worker(telco_train, tmp_path):
    telco_train.to_parquet(tmp_path / "train.parquet", index=False)
    table = distributed.read_table(tmp_path / "train.parquet", partitions=3)
    assert table.npartitions == 3
    pd.testing.assert_frame_equal(table.compute(), telco_train)


def test_a_folder_of_fewer_files_than_workers_is_read_in_row_slices(telco_train, tmp_path):
    halves = np.array_split(np.arange(len(telco_train)), 2)
    for number, rows in enumerate(halves):
        telco_train.iloc[rows].to_parquet(tmp_path / f"part-{number}.parquet", index=False)
    table = distributed.read_table(tmp_path, partitions=3)
    assert table.npartitions == 4  # two slices of each file
    pd.testing.assert_frame_equal(table.compute().reset_index(drop=True), telco_train)
    assert distributed.read_table(tmp_path, partitions=2).npartitions == 2  # enough files: read as they are


@pytest.mark.parametrize("family", ["logreg", "random_forest"])
def test_engine_dask_refuses_other_families_naming_the_option(telco_contract, family, tmp_path):
    section = ModelParams(name=family)
    paths = PathsParams.model_validate({k: str(tmp_path / k) for k in PathsParams.model_fields})
    with pytest.raises(ConfigError, match=rf"train\.engine: 'dask' trains xgboost only.*{family!r}"):
        fit_on_dask(paths, telco_contract, section, build_model(family, {}, seed=0), TrainParams(engine="dask"))


def test_an_unreachable_scheduler_is_named():
    with (
        pytest.raises(ConfigError, match=r"train\.scheduler: no Dask scheduler answers at 'tcp://127\.0\.0\.1:9'"),
        distributed.dask_client("tcp://127.0.0.1:9", workers=1, threads=1, memory_limit="1GiB", connect_timeout=1),
    ):
        pass


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"scheduler": "tcp://10.0.0.5:8786"}, r"scheduler 'tcp://10\.0\.0\.5:8786' is set but engine is 'local'"),
        ({"engine": "dask", "scheduler": "10.0.0.5:8786"}, r"scheduler"),
        ({"engine": "spark"}, r"engine"),
        ({"engine": "dask", "memory_limit": "lots"}, r"memory_limit"),
        ({"engine": "dask", "workers": 0}, r"workers"),
    ],
)
def test_train_section_refuses_bad_engine_settings(section, message):
    with pytest.raises(pydantic.ValidationError, match=message):
        TrainParams.model_validate(section)
