"""conf/ (Hydra) and params.yaml stay in step, and dvc.yaml only uses paths that params.yaml declares."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tabrepro.artefacts import ServeParams
from tabrepro.config.compose import compose_config
from tabrepro.config.dataset import resolve_data
from tabrepro.config.params import (
    EvaluateParams,
    FeaturesParams,
    ModelParams,
    PackageParams,
    PathsParams,
    SplitParams,
    TrainParams,
    TuneParams,
)
from tabrepro.contract.spec import load_contract
from tabrepro.errors import ConfigError
from tabrepro.training.modeling import build_model

REPO = Path(__file__).resolve().parents[2]
MODELS = sorted(p.stem for p in (REPO / "conf" / "model").glob("*.yaml") if p.stem != "auto")
DATASETS = sorted(p.stem for p in (REPO / "conf" / "data").glob("*.yaml"))


def test_committed_params_equal_the_composition_of_conf():
    committed = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    assert compose_config(REPO / "conf") == committed, "conf/ changed: run `make params` and commit params.yaml"


@pytest.mark.parametrize("model", MODELS)
def test_every_model_config_composes_and_builds(model):
    cfg = compose_config(REPO / "conf", [f"model={model}"])
    spec = ModelParams.model_validate(cfg["model"])
    assert spec.name == model
    assert spec.search_space, f"conf/model/{model}.yaml declares no search space"
    task = "regression" if model == "ridge" else "binary"
    estimator = build_model(spec.name, spec.params, task=task, seed=0)
    linear = {"logreg": "clf", "ridge": "reg"}
    built = estimator.named_steps[linear[model]] if model in linear else estimator
    assert {k: built.get_params()[k] for k in spec.params} == spec.params


def test_auto_carries_every_family_config_as_it_is():
    """model: auto's candidates are the family files themselves, so params.yaml holds all that dvc repro needs."""
    auto = ModelParams.model_validate(compose_config(REPO / "conf", ["model=auto"])["model"])
    assert auto.name == "auto" and sorted(f.name for f in auto.families) == MODELS
    for family in auto.families:
        assert family == ModelParams.model_validate(compose_config(REPO / "conf", [f"model={family.name}"])["model"])


def test_a_candidate_can_be_overridden_alone():
    cfg = compose_config(REPO / "conf", ["model=auto", "model.candidates.xgboost.params.max_depth=5"])["model"]
    auto = ModelParams.model_validate(cfg)
    assert auto.family("xgboost").params["max_depth"] == 5 and auto.family("logreg").params["C"] == 1.0


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_data_contract_loads(dataset):
    cfg = compose_config(REPO / "conf", [f"data={dataset}"])
    assert set(cfg["data"]) == {"name", "task", "source", "contract"}, "only a reference to the contract is params"
    contract = load_contract(resolve_data(cfg["data"], root=REPO))
    assert contract.name == dataset and contract.target.task == cfg["data"]["task"]


def test_every_section_validates(params):
    for key, model in {
        "paths": PathsParams,
        "split": SplitParams,
        "features": FeaturesParams,
        "train": TrainParams,
        "evaluate": EvaluateParams,
        "tune": TuneParams,
        "package": PackageParams,
        "serve": ServeParams,
    }.items():
        model.model_validate(params[key])


def test_dvc_yaml_paths_come_from_params(params):
    text = (REPO / "dvc.yaml").read_text()
    for ref in re.findall(r"\$\{paths\.(\w+)\}", text):
        assert ref in params["paths"], f"dvc.yaml uses ${{paths.{ref}}}, which params.yaml does not declare"
    # Top-level plot definitions cannot be templated; they must sit under the declared folders.
    plots = yaml.safe_load(text)["plots"]
    folders = [params["paths"][k] for k in ("plots", "train_live", "figures", "tune_reports")]
    for entry in plots:
        if isinstance(entry, str):
            paths = [entry]
        else:
            ((name, props),) = entry.items()
            paths = list(props.get("y") or {}) if isinstance(props.get("y"), dict) else [name]
        for path in paths:
            assert any(str(path).startswith(f) for f in folders), f"plot {path} is outside {folders}"


def test_hydra_composition_is_enabled_for_dvc():
    assert re.search(r"\[hydra\]\s+enabled = true", (REPO / ".dvc" / "config").read_text())


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model=nonexistent"], r"Could not find 'model/nonexistent'\s+Available options in 'model':\s+auto\s+logreg"),
        (["modle.params.max_depth=3"], r"Could not override 'modle\.params\.max_depth'"),
        (["seed=="], r"Error parsing override 'seed=='"),
    ],
)
def test_a_bad_override_is_a_config_error_with_hydras_explanation(overrides, message):
    with pytest.raises(ConfigError, match=message) as err:
        compose_config(REPO / "conf", overrides)
    assert "Config search path" not in str(err.value)


def test_a_missing_conf_folder_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="Primary config directory not found"):
        compose_config(tmp_path / "conf")
