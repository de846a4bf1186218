"""tabrepro: a declarative, DVC-driven, reproducible experiment repository for tabular machine learning."""

__version__ = "0.1.0"
