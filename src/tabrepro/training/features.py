"""The preprocessor: an unfitted scikit-learn ColumnTransformer derived from the data contract.

Numeric features are median/mean-imputed, boolean (0/1) features take the most frequent value, categorical
features are one-hot encoded over the levels the contract declares (so the feature set does not depend on which
levels happen to be in a split; a missing value encodes as all zeros). The fitted transformer is what
``package`` later puts in front of the model, so training and serving share it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import OneHotEncoder

from tabrepro.contract.spec import DataContract
from tabrepro.errors import ConfigError


def select_features(contract: DataContract, *, drop: Sequence[str] = ()) -> list[str]:
    """The contract's features minus ``drop``; an unknown name in ``drop`` is a ConfigError."""
    unknown = sorted(set(drop) - set(contract.features))
    if unknown:
        raise ConfigError(f"params.yaml: features.drop: {unknown} are not features of {contract.name!r}")
    kept = [name for name in contract.features if name not in drop]
    if not kept:
        raise ConfigError("params.yaml: features.drop: drops every feature")
    return kept


def build_preprocessor(
    contract: DataContract, *, numeric_impute: str = "median", drop: Sequence[str] = ()
) -> ColumnTransformer:
    """Return the UNFITTED preprocessor for the contract's features (minus ``drop``)."""
    kept = set(select_features(contract, drop=drop))
    numeric = [c for c in contract.numeric_features if c in kept]
    boolean = [c for c in contract.boolean_features if c in kept]
    categorical = [c for c in contract.categorical_features if c in kept]
    encoder = OneHotEncoder(
        categories=[list(contract.features[c].values or ()) for c in categorical],
        handle_unknown="ignore",
        sparse_output=False,
        dtype=np.float32,
    )
    transformers = [
        ("num", SimpleImputer(strategy=numeric_impute), numeric),
        ("bool", SimpleImputer(strategy="most_frequent"), boolean),
        ("cat", encoder, categorical),
    ]
    return ColumnTransformer([t for t in transformers if t[2]], remainder="drop")


def transform_frame(preprocessor: ColumnTransformer, df: pd.DataFrame) -> pd.DataFrame:
    """Apply a fitted preprocessor; the result is float32 with the preprocessor's output names."""
    matrix = np.asarray(preprocessor.transform(df), dtype=np.float32)
    names = [str(n) for n in preprocessor.get_feature_names_out()]
    return pd.DataFrame(matrix, columns=names, index=df.index)


def split_xy(frame: pd.DataFrame, contract: DataContract) -> tuple[np.ndarray, np.ndarray]:
    """Feature matrix (float32) and target vector of a featurized split: int64 labels (binary 0/1, multiclass the
    class index), float64 values for a regression target."""
    x = frame.drop(columns=[contract.key_column, contract.target.column])
    dtype = np.float64 if contract.target.task == "regression" else np.int64
    return x.to_numpy(dtype=np.float32), frame[contract.target.column].to_numpy(dtype=dtype)
