"""The data contract: one YAML declaration of a data set, and everything derived from it.

A contract (``conf/data/<name>.yaml``, composed into ``params.yaml`` under ``data``) declares the source, the id
column, the binary target and every feature: its type, allowed values or range, whether it may be missing and
which raw tokens mean "missing". From it come the pandera schema that gates ``prepare`` and the column lists of
the preprocessor; nothing else in the code knows which data set it is working on.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, create_model, model_validator

from tabrepro.errors import ConfigError, parse_section

if TYPE_CHECKING:  # pandera is needed to validate tables, not to serve: the service imports this module
    import pandera.pandas as pa


def _to_token(value: Any) -> Any:
    """Raw tokens are text. Numbers are accepted and written as text; YAML booleans are refused."""
    if isinstance(value, bool):
        raise ValueError(f'{value!r} is a YAML boolean; quote raw tokens (write "Yes", not Yes)')
    if isinstance(value, int | float):
        return str(value)
    return value


Token = Annotated[str, BeforeValidator(_to_token)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeatureSpec(_Strict):
    """One feature column: how its raw text parses and which values are allowed."""

    type: Literal["numeric", "categorical", "boolean"]
    description: str = ""
    nullable: bool = False
    # numeric
    min: float | None = None
    max: float | None = None
    integer: bool = False
    # categorical
    values: tuple[Token, ...] | None = None
    # boolean
    true_values: tuple[Token, ...] = ("Yes",)
    false_values: tuple[Token, ...] = ("No",)

    @model_validator(mode="after")
    def _check_type_fields(self) -> FeatureSpec:
        if self.type != "numeric" and (self.min is not None or self.max is not None or self.integer):
            raise ValueError(f"min/max/integer apply to numeric features, not {self.type}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"empty range: min {self.min} > max {self.max}")
        if self.type == "categorical" and not self.values:
            raise ValueError("a categorical feature needs a non-empty 'values' list")
        if self.type != "categorical" and self.values is not None:
            raise ValueError(f"'values' applies to categorical features, not {self.type}")
        if self.type == "boolean" and set(self.true_values) & set(self.false_values):
            raise ValueError("true_values and false_values overlap")
        return self


class TargetSpec(_Strict):
    """The binary target: its column and the raw labels of the two classes."""

    column: str
    positive: Token
    negative: Token

    @model_validator(mode="after")
    def _check_labels(self) -> TargetSpec:
        if self.positive == self.negative:
            raise ValueError("positive and negative labels are the same")
        return self


class DataContract(_Strict):
    """A data set: where it is, its key, its target and its features."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    source: str
    format: Literal["csv", "parquet"] = "csv"
    id_column: str
    target: TargetSpec
    missing_values: tuple[Token, ...] = ("",)
    features: dict[str, FeatureSpec] = Field(min_length=1)
    # features whose levels get their own metrics in evaluate (and the largest gap between them)
    segments: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _check_names(self) -> DataContract:
        clash = {self.id_column, self.target.column} & set(self.features)
        if clash or self.id_column == self.target.column:
            raise ValueError(f"id, target and feature columns must differ; clash on {sorted(clash)}")
        unknown = [c for c in self.segments if c not in self.features]
        if unknown:
            raise ValueError(f"segments: unknown column(s) {unknown}; features are: {', '.join(self.features)}")
        return self

    @cached_property
    def numeric_features(self) -> list[str]:
        return [n for n, f in self.features.items() if f.type == "numeric"]

    @cached_property
    def boolean_features(self) -> list[str]:
        return [n for n, f in self.features.items() if f.type == "boolean"]

    @cached_property
    def categorical_features(self) -> list[str]:
        return [n for n, f in self.features.items() if f.type == "categorical"]

    @property
    def feature_names(self) -> list[str]:
        return list(self.features)

    @property
    def columns(self) -> list[str]:
        """Every column the raw table must have, in contract order."""
        return [self.id_column, *self.features, self.target.column]


def load_contract(data_section: Any, *, where: str = "params.yaml: data") -> DataContract:
    """Validate a contract mapping; a typo'd key or unknown type is a ConfigError naming it."""
    if not isinstance(data_section, dict):
        raise ConfigError(f"{where}: expected a mapping (the data contract), got {type(data_section).__name__}")
    return parse_section(DataContract, data_section, where=where)


def build_schema(contract: DataContract) -> pa.DataFrameSchema:
    """The pandera schema of a *parsed* table (see ``tabrepro.contract.table``): dtypes, ranges, levels, key."""
    import pandera.pandas as pa

    columns: dict[str, pa.Column] = {
        contract.id_column: pa.Column("str", nullable=False, unique=True),
        contract.target.column: pa.Column(
            "str", pa.Check.isin([contract.target.positive, contract.target.negative]), nullable=True
        ),
    }
    for name, spec in contract.features.items():
        columns[name] = pa.Column(_dtype(spec), _checks(spec), nullable=spec.nullable)
    return pa.DataFrameSchema(columns, name=contract.name, strict=False)


def _dtype(spec: FeatureSpec) -> str:
    return "str" if spec.type == "categorical" else "float64"


def _checks(spec: FeatureSpec) -> list[pa.Check]:
    import pandera.pandas as pa

    if spec.type == "categorical":
        return [pa.Check.isin(list(spec.values or ()))]
    if spec.type == "boolean":
        return [pa.Check.isin([0.0, 1.0])]
    checks = []
    if spec.min is not None:
        checks.append(pa.Check.ge(spec.min))
    if spec.max is not None:
        checks.append(pa.Check.le(spec.max))
    if spec.integer:
        checks.append(pa.Check(lambda s: s % 1 == 0, element_wise=False, name="is_integer"))
    return checks


def build_record_model(contract: DataContract) -> type[BaseModel]:
    """The pydantic model of one raw record, as the service receives it.

    It accepts exactly what ``prepare`` would accept for a row (the contract's raw tokens, ranges and levels) and
    yields the parsed values the ONNX graph takes: numbers and booleans as floats (None when missing), levels as
    text. Every feature is required (a nullable one may be null); unknown fields are refused.
    """
    fields: dict[str, Any] = {contract.id_column: (str | None, None)}
    for name, spec in contract.features.items():
        kind = {"numeric": _numeric_field, "boolean": _boolean_field, "categorical": _categorical_field}
        value_type = kind[spec.type](spec)
        value_type = Annotated[value_type | None, BeforeValidator(_missing_to_none(contract, spec))]
        fields[name] = (value_type, ...)
    return create_model(f"{contract.name}_record", __config__=ConfigDict(extra="forbid", frozen=True), **fields)


def _missing_to_none(contract: DataContract, spec: FeatureSpec) -> Any:
    def convert(value: Any) -> Any:
        missing = value is None or (isinstance(value, str) and value.strip() in contract.missing_values)
        if missing and not spec.nullable:
            raise ValueError("missing value in a field that may not be missing")
        return None if missing else value

    return convert


def _numeric_field(spec: FeatureSpec) -> Any:
    def check_integer(value: float) -> float:
        if spec.integer and value % 1 != 0:
            raise ValueError(f"expected an integer, got {value}")
        return value

    def refuse_python_syntax(value: Any) -> Any:
        # pydantic parses text with Python's float(), which takes "1_000"; prepare (pandas) does not
        if isinstance(value, str) and "_" in value:
            raise ValueError("expected a number")
        return value

    bounds = Field(ge=spec.min, le=spec.max)
    return Annotated[float, BeforeValidator(refuse_python_syntax), bounds, AfterValidator(check_integer)]


def _boolean_field(spec: FeatureSpec) -> Any:
    mapping = {t: 1.0 for t in spec.true_values} | {f: 0.0 for f in spec.false_values}

    def parse(value: Any) -> float:
        token = str(value).strip() if isinstance(value, str | int | float) and not isinstance(value, bool) else value
        if token not in mapping:
            raise ValueError(f"expected one of {list(mapping)}")
        return mapping[token]

    return Annotated[float, BeforeValidator(parse)]


def _categorical_field(spec: FeatureSpec) -> Any:
    return Annotated[
        Literal[tuple(spec.values or ())], BeforeValidator(lambda v: v.strip() if isinstance(v, str) else v)
    ]
