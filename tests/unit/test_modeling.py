"""The model factory, fitting with early stopping, and safe persistence with sha256 checks."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from tabrepro.config.params import MODEL_FAMILIES
from tabrepro.errors import ConfigError
from tabrepro.training.modeling import ModelFileError, build_model, fit_model, load_model, save_model


@pytest.fixture
def xy() -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4)).astype(np.float32)
    y = (x[:, 0] + 0.5 * rng.normal(size=300) > 0).astype(int)
    return x[:200], y[:200], x[200:], y[200:]


SMALL = {
    "xgboost": {"n_estimators": 200, "max_depth": 2},
    "logreg": {"C": 0.5},
    "random_forest": {"n_estimators": 20},
}


def test_unknown_hyperparameter_is_named():
    with pytest.raises(ConfigError, match=r"model\.params: unknown hyper-parameter\(s\) \['max_dept'\] for xgboost"):
        build_model("xgboost", {"max_dept": 3}, seed=0)


def test_logreg_carries_its_own_scaler():
    model = build_model("logreg", {}, seed=0)
    assert isinstance(model, Pipeline) and list(model.named_steps) == ["scale", "clf"]


def test_factory_returns_unfitted_estimators():
    for family in ("xgboost", "logreg", "random_forest"):  # the binary families (per task: test_modeling_tasks)
        model = build_model(family, SMALL[family], seed=0)
        with pytest.raises(Exception, match=r"(?i)not fitted|need to call fit"):
            model.predict_proba(np.zeros((1, 4), dtype=np.float32))


def test_early_stopping_refits_with_best_rounds(xy):
    model = build_model("xgboost", {"n_estimators": 500, "learning_rate": 0.3}, seed=0)
    result = fit_model(model, *xy, early_stopping_rounds=10)
    assert result.best_iteration is not None and result.best_iteration < 499
    assert result.model.get_booster().num_boosted_rounds() == result.best_iteration + 1
    assert set(result.curves) == {"train", "val"}
    assert len(result.curves["val"]["logloss"]) > result.best_iteration


@pytest.mark.parametrize("family", [f for f in MODEL_FAMILIES if f != "ridge"])  # ridge: test_modeling_tasks
def test_save_load_round_trip(family, xy, tmp_path):
    result = fit_model(build_model(family, SMALL[family], seed=0), *xy)
    meta = save_model(result.model, family, tmp_path / "m", feature_names=["a", "b", "c", "d"])
    loaded, meta2 = load_model(tmp_path / "m")
    assert meta2 == meta and len(meta.sha256) == 64 and meta.feature_names == ("a", "b", "c", "d")
    x_val = xy[2]
    np.testing.assert_allclose(loaded.predict_proba(x_val), result.model.predict_proba(x_val), rtol=0, atol=1e-7)
    assert not any(p.suffix == ".pkl" for p in (tmp_path / "m").iterdir())


def test_altered_model_file_is_refused(xy, tmp_path):
    result = fit_model(build_model("random_forest", SMALL["random_forest"], seed=0), *xy)
    meta = save_model(result.model, "random_forest", tmp_path / "m")
    path = tmp_path / "m" / meta.file
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(ModelFileError, match="does not match"):
        load_model(tmp_path / "m")


def test_missing_model_is_named(tmp_path):
    with pytest.raises(ModelFileError, match="run the train stage"):
        load_model(tmp_path / "nothing")


def test_same_seed_same_model(xy):
    a = fit_model(build_model("xgboost", SMALL["xgboost"], seed=7), *xy).model.predict_proba(xy[2])
    b = fit_model(build_model("xgboost", SMALL["xgboost"], seed=7), *xy).model.predict_proba(xy[2])
    np.testing.assert_array_equal(a, b)
