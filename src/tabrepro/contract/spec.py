"""The data contract: one YAML declaration of a data set, and everything derived from it.

A contract (``conf/contracts/<name>.yaml``, named by ``params.yaml``'s ``data.contract``) declares the source, the id
column if the data has one (``key_column`` keys rows by their position otherwise), the target and its task
(``TargetSpec``: binary, multiclass or regression) and every
feature: its type, allowed values or range, whether it may be missing and which raw tokens mean "missing". From
it come the token grammar (``contract.grammar``) that every adapter applies (``table`` for prepare, ``rows`` for
scoring and drift, ``records`` for the service) and the column lists of the preprocessor; nothing else in the code
knows which data set it is working on.
"""

from __future__ import annotations

from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from tabrepro.contract.grammar import Grammar, compile_grammar
from tabrepro.errors import ConfigError, parse_section


def _to_token(value: Any) -> Any:
    """Raw tokens are text. Numbers are accepted and written as text; YAML booleans are refused."""
    if isinstance(value, bool):
        raise ValueError(f'{value!r} is a YAML boolean; quote raw tokens (write "Yes", not Yes)')
    if isinstance(value, int | float):
        return str(value)
    return value


Token = Annotated[str, BeforeValidator(_to_token)]
# the key column of a data set without an id: each row's line (CSV) or row (Parquet) number in its source
ROW_KEY = "row"


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


Task = Literal["binary", "multiclass", "regression"]
TASKS: tuple[Task, ...] = ("binary", "multiclass", "regression")


class TargetSpec(_Strict):
    """The target: its column and the task it poses.

    - ``binary`` (the default, so a contract written before tasks existed stays valid): the raw labels of the two
      classes, ``positive`` and ``negative``; prepared as 1 / 0, scored as the probability of ``positive``.
    - ``multiclass``: ``classes``, three or more raw labels in order; prepared as the index of the label in that
      order, which is also the column order of every probability output (ONNX, the service, scoring, reports).
    - ``regression``: a number, optionally bounded (``min``, ``max``: a value outside is refused like a feature's)
      and with a ``unit`` for reports; prepared as float64.
    """

    column: str
    task: Task = "binary"
    positive: Token | None = None
    negative: Token | None = None
    classes: tuple[Token, ...] | None = None
    min: float | None = None
    max: float | None = None
    unit: str = ""
    # a row whose label is missing: "refuse" the table, naming the rows; or "drop" them (logged and counted)
    missing: Literal["refuse", "drop"] = "refuse"

    @model_validator(mode="after")
    def _check_task_fields(self) -> TargetSpec:
        given = {k for k in ("positive", "negative", "classes", "min", "max") if getattr(self, k) is not None}
        allowed = {"binary": {"positive", "negative"}, "multiclass": {"classes"}, "regression": {"min", "max"}}
        stray = sorted(given - allowed[self.task])
        if stray or (self.unit and self.task != "regression"):
            names = ", ".join(stray + (["unit"] if self.unit and self.task != "regression" else []))
            raise ValueError(f"{names}: not a field of a {self.task} target (task: {self.task})")
        if self.task == "binary":
            if self.positive is None or self.negative is None:
                raise ValueError("a binary target needs both 'positive' and 'negative' labels")
            if self.positive == self.negative:
                raise ValueError("positive and negative labels are the same")
        if self.task == "multiclass":
            if self.classes is None or len(self.classes) < 3:
                raise ValueError("a multiclass target needs 'classes': three or more labels, in output order")
            repeated = sorted({c for c in self.classes if self.classes.count(c) > 1})
            if repeated:
                raise ValueError(f"classes: {repeated} listed more than once")
        if self.task == "regression" and self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"empty range: min {self.min} > max {self.max}")
        return self

    @property
    def labels(self) -> tuple[str, ...]:
        """The raw labels in prepared-code order: binary (negative, positive), multiclass its classes, regression
        none."""
        if self.task == "binary":
            assert self.negative is not None and self.positive is not None  # checked by the validator
            return (self.negative, self.positive)
        return self.classes or ()

    @property
    def is_classification(self) -> bool:
        return self.task != "regression"


class DataContract(_Strict):
    """A data set: where it is, its key, its target and its features."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    source: str
    format: Literal["csv", "parquet"] = "csv"
    id_column: str | None = Field(default=None, min_length=1)  # None: rows are keyed by position
    target: TargetSpec
    missing_values: tuple[Token, ...] = ("",)
    features: dict[str, FeatureSpec] = Field(min_length=1)
    # features whose levels get their own metrics in evaluate (and the largest gap between them)
    segments: tuple[str, ...] = ()
    # sensitive attributes (categorical or boolean features): evaluate reports the task's metric and the
    # selection or error rate per group, with CIs and the largest gap; the policy may gate on that gap
    sensitive: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _check_names(self) -> DataContract:
        clash = {c for c in (self.id_column, self.target.column) if c is not None} & set(self.features)
        if clash or self.id_column == self.target.column:
            raise ValueError(f"id, target and feature columns must differ; clash on {sorted(clash)}")
        unknown = [c for c in self.segments if c not in self.features]
        if unknown:
            raise ValueError(f"segments: unknown column(s) {unknown}; features are: {', '.join(self.features)}")
        unknown = [c for c in self.sensitive if c not in self.features]
        if unknown:
            raise ValueError(f"sensitive: unknown column(s) {unknown}; features are: {', '.join(self.features)}")
        numeric = [c for c in self.sensitive if self.features[c].type == "numeric"]
        if numeric:
            raise ValueError(f"sensitive: {numeric} numeric; groups need a categorical or boolean feature")
        return self

    @cached_property
    def grammar(self) -> Grammar:
        """The contract's token rules and messages, compiled once (see ``tabrepro.contract.grammar``)."""
        return compile_grammar(self)

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
        """Every column the raw table must have, in contract order (no id column when none is declared)."""
        return [*self.id_columns, *self.features, self.target.column]

    @property
    def id_columns(self) -> list[str]:
        """The declared id column as a list: ``[id_column]``, or ``[]`` when the data set has no id."""
        return [] if self.id_column is None else [self.id_column]

    @cached_property
    def key_column(self) -> str:
        """The column that keys each row in the prepared splits, feature matrices, predictions and batch scores.

        The id column when one is declared. Otherwise ``row``, holding the row's position in its source as every
        message numbers it (a CSV row by its line, the header being line 1; a Parquet row from 1); ``_row``,
        ``__row``, ... when a feature or the target is already called ``row``.
        """
        if self.id_column is not None:
            return self.id_column
        taken, name = {*self.features, self.target.column}, ROW_KEY
        while name in taken:
            name = "_" + name
        return name


def load_contract(data_section: Any, *, where: str = "params.yaml: data") -> DataContract:
    """Validate a contract mapping; a typo'd key or unknown type is a ConfigError naming it."""
    if not isinstance(data_section, dict):
        raise ConfigError(f"{where}: expected a mapping (the data contract), got {type(data_section).__name__}")
    return parse_section(DataContract, data_section, where=where)
