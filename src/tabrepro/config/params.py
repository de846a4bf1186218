"""Typed, validated views of ``params.yaml``.

``params.yaml`` is composed from ``conf/`` by DVC's Hydra integration and committed. Each stage's ``main()`` reads
the sections it declares in ``dvc.yaml``, validates them here into frozen pydantic models and passes plain values
down. A typo'd key, a wrong type or a value out of range is a ``ConfigError`` that names the key.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tabrepro.config.dataset import is_reference, resolve_data
from tabrepro.config.precision import DEFAULT_DECIMALS
from tabrepro.contract.policy import CostMatrix as CostMatrix  # re-exported: its home is the data policy
from tabrepro.errors import ConfigError, parse_section

M = TypeVar("M", bound=BaseModel)

MODEL_FAMILIES = ("xgboost", "logreg", "random_forest", "ridge")
Family = Literal["xgboost", "logreg", "random_forest", "ridge"]
# The tasks each family serves (issue 21): logreg is the linear family of classification, ridge of regression.
FAMILY_TASKS: dict[str, tuple[str, ...]] = {
    "logreg": ("binary", "multiclass"),
    "ridge": ("regression",),
    "random_forest": ("binary", "multiclass", "regression"),
    "xgboost": ("binary", "multiclass", "regression"),
}
# The tuning objective of each task: the default (first) and the others accepted (tune.objective.<task>).
OBJECTIVES: dict[str, tuple[str, ...]] = {
    "binary": ("roc_auc", "log_loss"),
    "multiclass": ("log_loss", "roc_auc_ovr_macro"),
    "regression": ("rmse", "mae"),
}
# every seed feeds NumPy's and the tuners' generators, which take [0, 2**32 - 1]: checked here, before any work
SEED_MAX = 2**32 - 1


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PathsParams(_Section):
    """Every path the stages read or write; ``dvc.yaml`` references the same keys with ``${paths.x}``."""

    prepared: str
    data_quality: str
    features: str
    preprocessor: str
    reference_stats: str
    model: str
    best_params: str
    tune_study: str
    tune_reports: str
    train_live: str
    metrics: str
    serving: str
    package_report: str
    bento: str
    plots: str
    figures: str
    predictions: str
    explain: str
    model_card: str
    bento_receipt: str = "bentos/published.json"  # exists only while the bento store holds the packaged tag
    runs: str = "reports/runs"  # run records (timings, host, git revision): git-ignored, no DVC output


class SplitParams(_Section):
    """Stratified train/val/test split: ratios that sum to 1 and the seed that fixes it."""

    train: float = Field(gt=0, lt=1)
    val: float = Field(gt=0, lt=1)
    test: float = Field(gt=0, lt=1)
    seed: int = Field(ge=0, le=SEED_MAX)

    @model_validator(mode="after")
    def _sum_to_one(self) -> SplitParams:
        total = self.train + self.val + self.test
        if not math.isclose(total, 1.0, abs_tol=1e-9):
            raise ValueError(f"train + val + test must be 1, got {total:g}")
        return self


class FeaturesParams(_Section):
    """How the preprocessor treats the contract's columns, and the drift reference it saves."""

    numeric_impute: Literal["median", "mean"] = "median"
    drop: tuple[str, ...] = ()
    reference_bins: int = Field(default=10, ge=2, le=100)


class SearchDimension(_Section):
    """One searched hyper-parameter: a distribution and its bounds (or choices)."""

    distribution: Literal["int", "float", "log_float", "categorical"]
    low: float | None = Field(default=None, allow_inf_nan=False)
    high: float | None = Field(default=None, allow_inf_nan=False)
    step: float | None = Field(default=None, gt=0)
    choices: tuple[Any, ...] | None = None

    @model_validator(mode="after")
    def _check_bounds(self) -> SearchDimension:
        if self.distribution == "categorical":
            if not self.choices:
                raise ValueError("a categorical dimension needs a non-empty 'choices' list")
            if self.low is not None or self.high is not None:
                raise ValueError("a categorical dimension takes 'choices', not low/high")
            return self
        if self.low is None or self.high is None:
            raise ValueError(f"a {self.distribution} dimension needs 'low' and 'high'")
        if not self.low < self.high:
            raise ValueError(f"empty or inverted range: low {self.low:g} must be below high {self.high:g}")
        if self.distribution == "log_float" and self.low <= 0:
            raise ValueError(f"a log_float range must be positive, got low {self.low:g}")
        if self.distribution == "int" and (self.low != int(self.low) or self.high != int(self.high)):
            raise ValueError("an int dimension needs integer low and high")
        if self.choices is not None:
            raise ValueError(f"'choices' applies to categorical dimensions, not {self.distribution}")
        return self

    def bounds(self) -> tuple[float, float]:
        """``(low, high)`` of a numeric dimension (validation makes both present); ValueError for a categorical."""
        if self.low is None or self.high is None:
            raise ValueError(f"a {self.distribution} dimension has no low/high bounds")
        return self.low, self.high


class ModelParams(_Section):
    """One model family, its hyper-parameters and its search space (``conf/model/<name>.yaml``), or ``auto``: the
    candidate families (each such a section) that tune searches and chooses among (``conf/model/auto.yaml``)."""

    name: Literal["xgboost", "logreg", "random_forest", "ridge", "auto"]
    params: dict[str, Any] = Field(default_factory=dict)
    early_stopping_rounds: int | None = Field(default=None, ge=1)
    search_space: dict[str, SearchDimension] = Field(default_factory=dict)
    candidates: dict[Family, ModelParams] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _early_stopping_only_for_boosting(self) -> ModelParams:
        if self.early_stopping_rounds is not None and self.name != "xgboost":
            raise ValueError(f"early_stopping_rounds applies to xgboost, not {self.name}")
        return self

    @model_validator(mode="after")
    def _candidates_only_for_auto(self) -> ModelParams:
        if self.name != "auto":
            if self.candidates:
                raise ValueError(f"candidates applies to name: auto, not {self.name}")
            return self
        if self.params or self.search_space:
            raise ValueError("name: auto takes candidates (one section per family), not params or search_space")
        if not self.candidates:
            raise ValueError(f"name: auto needs at least one of {list(MODEL_FAMILIES)} under candidates")
        for key, family in self.candidates.items():
            if family.name != key:
                raise ValueError(f"candidates.{key}.name is {family.name!r}; it must be {key!r}")
        return self

    @property
    def families(self) -> tuple[ModelParams, ...]:
        """The families tune searches: the candidates (``auto``), or this one family."""
        return tuple(self.candidates.values()) if self.name == "auto" else (self,)

    def family(self, name: str) -> ModelParams:
        """The section of family ``name`` (its own params, search space and early stopping); a ConfigError when
        this section does not have it (e.g. best params of another family than the one pinned)."""
        for family in self.families:
            if family.name == name:
                return family
        have = [f.name for f in self.families]
        raise ConfigError(f"params.yaml: model: no family {name!r} here (model.name {self.name!r}; families {have})")

    def for_task(self, task: str) -> ModelParams:
        """This section with only the families that serve ``task`` (``FAMILY_TASKS``): under auto the candidates
        that fit; a pinned family that does not serve the task is a ConfigError naming both."""
        if self.name != "auto":
            if task not in FAMILY_TASKS[self.name]:
                serving = [f for f, tasks in FAMILY_TASKS.items() if task in tasks]
                raise ConfigError(
                    f"params.yaml: model.name: {self.name} does not serve the contract's task {task!r} "
                    f"(data.target.task); families for {task}: {serving}, or model=auto"
                )
            return self
        kept = {k: v for k, v in self.candidates.items() if task in FAMILY_TASKS[k]}
        if not kept:
            raise ConfigError(f"params.yaml: model.candidates: none serves the contract's task {task!r}")
        return self.model_copy(update={"candidates": kept})


class TuneParams(_Section):
    """The hyper-parameter search: budget, cross-validation, pruning and where the study is stored."""

    n_trials: int = Field(ge=0)
    timeout: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    cv_folds: int = Field(default=5, ge=2, le=20)
    n_startup_trials: int = Field(default=10, ge=0)
    pruning: bool = True
    storage: str | None = None
    study_name: str | None = None
    # database storage only: a trial whose heartbeat is older than grace_period is failed and retried
    heartbeat_interval: int = Field(default=10, ge=1)
    grace_period: int = Field(default=30, ge=2)
    trial_retries: int = Field(default=2, ge=0)
    # the CV score the search optimises, per task (its direction follows from the name)
    objective: dict[str, str] = Field(default_factory=lambda: {task: names[0] for task, names in OBJECTIVES.items()})

    @model_validator(mode="after")
    def _objective_fits_task(self) -> TuneParams:
        for task, name in self.objective.items():
            if task not in OBJECTIVES:
                raise ValueError(f"objective.{task}: not a task; tasks: {list(OBJECTIVES)}")
            if name not in OBJECTIVES[task]:
                raise ValueError(f"objective.{task}: {name!r} is not an objective of {task}; one of {OBJECTIVES[task]}")
        return self

    def objective_for(self, task: str) -> str:
        """The objective's name for ``task`` (the default when ``tune.objective`` does not name the task)."""
        return self.objective.get(task, OBJECTIVES[task][0])

    @model_validator(mode="after")
    def _grace_after_heartbeat(self) -> TuneParams:
        if self.grace_period <= self.heartbeat_interval:
            raise ValueError(
                f"grace_period ({self.grace_period} s) must be longer than heartbeat_interval "
                f"({self.heartbeat_interval} s), or live trials are failed as dead"
            )
        return self


class TrainParams(_Section):
    """Training run settings that are not hyper-parameters.

    ``engine: dask`` trains XGBoost on ``xgboost.dask``: on the cluster at ``scheduler`` (``tcp://host:8786``), or,
    when it is null, on a ``LocalCluster`` of ``workers`` processes of ``n_jobs`` threads and ``memory_limit`` each.
    """

    n_jobs: int = Field(default=2, ge=1)
    engine: Literal["local", "dask"] = "local"
    scheduler: str | None = Field(default=None, pattern=r"^(tcp|tls|ucx|inproc)://\S+$")
    workers: int = Field(default=2, ge=1)
    memory_limit: str = Field(default="4GiB", pattern=r"^\d+(\.\d+)?\s*([kMGT]i?B|B)$")

    @model_validator(mode="after")
    def _scheduler_needs_dask(self) -> TrainParams:
        if self.scheduler is not None and self.engine != "dask":
            raise ValueError(f"scheduler {self.scheduler!r} is set but engine is {self.engine!r}; set engine: dask")
        return self


class ReproducibilityParams(_Section):
    """The declared precision: every number written to a tracked file, and every number a decision compares (the
    tuning objective, pruning, the family choice, the threshold), is rounded to ``decimals`` places
    (``tabrepro.config.precision``), so last-digit differences between CPUs change neither."""

    decimals: int = Field(default=DEFAULT_DECIMALS, ge=3, le=12)


class BootstrapParams(_Section):
    """Seeded percentile bootstrap over the test rows."""

    n: int = Field(default=1000, ge=1, le=100_000)
    seed: int = Field(default=42, ge=0, le=SEED_MAX)
    level: float = Field(default=0.95, gt=0.5, lt=1)


class EvaluateParams(_Section):
    """How the decision threshold is chosen (on val) and how the test split is summarised.

    The promotion gate and the cost matrix are the data set's policy (params ``policy``, from
    ``conf/policy/<data set>.yaml``; see ``tabrepro.contract.policy``), not evaluation settings.
    """

    threshold_policy: Literal["max_f1", "min_cost"] = "max_f1"
    calibration_bins: int = Field(default=10, ge=2, le=100)
    bootstrap: BootstrapParams = BootstrapParams()
    segment_min_rows: int = Field(default=30, ge=2)
    permutation_repeats: int = Field(default=5, ge=1, le=100)

    @model_validator(mode="before")
    @classmethod
    def _policy_moved(cls, data: Any) -> Any:
        moved = [k for k in ("gate", "cost") if isinstance(data, dict) and k in data]
        if moved:
            keys = ", ".join(f"evaluate.{k} -> policy.{k}" for k in moved)
            raise ValueError(f"the gate and the cost matrix are the data set's policy now; move {keys}")
        return data


class PackageParams(_Section):
    """How closely ONNX must reproduce the fitted pipeline, and what the package stage builds."""

    tolerance: float = Field(default=1e-5, gt=0, lt=1, allow_inf_nan=False)
    latency_rows: int = Field(default=500, ge=10)
    build_bento: bool = True
    # The graph the CPU provider serves. A fixed file keeps the sealed manifest reproducible; "measured" lets this
    # run's timing choose (the tensor graph only if faster both for one row and in a batch), which can differ
    # between runs on a busy machine. GPU providers always get the tensor graph.
    cpu_graph: Literal["model.onnx", "model_tensor.onnx", "measured"] = "model.onnx"
    # A reason here packages a model that FAILED the promotion gate; it is logged and recorded in the bento labels.
    override_gate: str | None = Field(default=None, min_length=10)


class DriftParams(_Section):
    """When current data counts as drifted from the training reference, and when ``tabrepro drift`` says retrain.

    A feature's distribution drifts when its PSI is at least ``psi_moderate`` AND its test (KS or chi-squared)
    gives p below ``p_value``: with thousands of rows a test alone flags shifts too small to matter, and PSI
    alone is noisy on a few hundred. Retrain when more than ``max_drifted_features`` features drift with PSI
    at least ``psi_significant``, or unknown values, missing rates or the predicted probabilities cross theirs.
    """

    psi_moderate: float = Field(default=0.1, gt=0, allow_inf_nan=False)
    psi_significant: float = Field(default=0.25, gt=0, allow_inf_nan=False)
    p_value: float = Field(default=0.01, gt=0, lt=1)
    max_unknown_share: float = Field(default=0.01, ge=0, lt=1)
    max_missing_change: float = Field(default=0.05, ge=0, lt=1)
    score_psi: float = Field(default=0.25, gt=0, allow_inf_nan=False)
    min_rows: int = Field(default=200, ge=1)
    max_drifted_features: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _bands_in_order(self) -> DriftParams:
        if not self.psi_moderate < self.psi_significant:
            bands = f"psi_moderate {self.psi_moderate:g} must be below psi_significant {self.psi_significant:g}"
            raise ValueError(bands)
        return self


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    """Read the committed params file, its ``data`` reference replaced by the contract it names (``config.dataset``).
    Missing, a folder, unreadable, not YAML or not a mapping: a ConfigError naming the file (and, for YAML, the line
    and column), never a traceback; so is a contract file that is missing or disagrees with the reference."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder, not a params file (the default is params.yaml)")
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found (run from the repository root)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the params file: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level, got {type(data).__name__}")
    if is_reference(data.get("data")):  # the contract file it names, in place of the reference (config.dataset)
        data["data"] = resolve_data(data["data"], root=path.parent, where=f"{path.name}: data")
    return data


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """The parser's problem and where it is, 1-based (PyYAML's marks count from 0)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}" if mark is not None else problem


def read_section(params: dict[str, Any], key: str, model: type[M], *, source: str = "params.yaml") -> M:
    """``parse_section`` of ``params[key]``, with the key path in messages."""
    return parse_section(model, params.get(key), where=f"{source}: {key}")


def read_seed(params: dict[str, Any], *, source: str = "params.yaml") -> int:
    seed = params.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= SEED_MAX:
        raise ConfigError(f"{source}: seed: expected a whole number in [0, 2**32 - 1], got {seed!r}")
    return seed
