"""prepare and featurize on the three tables of the other tasks (issue 21), as their stages run them: the target
keeps its task's encoding through both (multiclass int16 class index, regression float64), the data-quality report
summarises it per split, and featurize's reference statistics describe the features only."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from tabrepro.artefacts import DataQuality, ReferenceStats, read_artefact
from tabrepro.config.params import FeaturesParams, PathsParams, SplitParams, read_section
from tabrepro.contract.spec import load_contract
from tabrepro.io.splits import SPLITS
from tabrepro.stages import featurize, prepare
from tests.conftest import REPO

DATA = {
    "penguins": ("species", "int16", 344),
    "islr_wage": ("wage", "float64", 3000),
    "islr_carseats": ("Sales", "float64", 400),
}


@pytest.mark.parametrize("name", sorted(DATA))
def test_prepare_and_featurize_keep_the_targets_encoding(name, params, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    target, dtype, rows = DATA[name]
    contract = load_contract(yaml.safe_load((REPO / "conf/contracts" / f"{name}.yaml").read_text(encoding="utf-8")))
    paths = PathsParams.model_validate({k: str(tmp_path / v) for k, v in params["paths"].items()})
    monkeypatch.chdir(REPO)  # the contract's source is relative to the repository
    prepare.run(paths, contract, read_section(params, "split", SplitParams), cv_folds=5)
    featurize.run(paths, contract, read_section(params, "features", FeaturesParams))
    for stage in (paths.prepared, paths.features):
        parts = {s: pd.read_parquet(Path(stage) / f"{s}.parquet") for s in SPLITS}
        assert {str(p[target].dtype) for p in parts.values()} == {dtype}
        assert sum(len(p) for p in parts.values()) == rows
    quality = read_artefact(paths.data_quality, DataQuality)
    assert sum(b.rows for b in quality.class_balance.values()) == rows
    if contract.target.task == "multiclass":
        test = pd.read_parquet(Path(paths.prepared) / "test.parquet")[target]
        assert sorted(test.unique()) == [0, 1, 2]  # every class reaches the test split
        assert list(quality.class_balance["train"].counts) == list(contract.target.labels)  # type: ignore[union-attr]
    else:
        summary = quality.class_balance["test"]
        whole = pd.read_csv(REPO / contract.source)[target]
        assert abs(summary.median - whole.median()) < 0.05 * whole.std()  # type: ignore[union-attr]
    reference = read_artefact(paths.reference_stats, ReferenceStats)
    assert set(reference.features) == set(contract.feature_names) and target not in reference.features
