"""The hyper-parameters each model family accepts here, with their allowed types and ranges.

Checked before anything is fitted: the configured values (``model.params``, also those the search will replace), the
bounds and choices of the search space, and (logreg) the combinations a fit would refuse. Without this, a value out
of range fails inside the library at trial 0 with a traceback, or (``n_estimators: 0``, ``learning_rate: 0``)
trains a model that learned nothing. Every problem is reported at once, each with its full key.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tabrepro.config.params import SearchDimension
from tabrepro.errors import ConfigError

INF = math.inf


@dataclass(frozen=True)
class Span:
    """Numbers of one kind (``int`` or ``float``) between ``low`` and ``high``; ``open_*`` excludes that bound."""

    kind: type
    low: float = -INF
    high: float = INF
    open_low: bool = False
    open_high: bool = False

    def admits(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            return False
        if self.kind is int and not isinstance(value, int):
            return False
        above = value > self.low if self.open_low else value >= self.low
        below = value < self.high if self.open_high else value <= self.high
        return above and below

    def __str__(self) -> str:
        what = "an integer" if self.kind is int else "a number"
        if self.high == INF:
            return f"{what} {'>' if self.open_low else '>='} {self.low:g}"
        left, right = "(" if self.open_low else "[", ")" if self.open_high else "]"
        return f"{what} in {left}{self.low:g}, {self.high:g}{right}"


Rule = tuple[Span | str | bool | None, ...]  # alternatives: a span, or one allowed literal value

POSITIVE_INT, NON_NEGATIVE = Span(int, 1), Span(float, 0)
FRACTION = Span(float, 0, 1, open_low=True)  # (0, 1]
BOOLEAN: Rule = (True, False)

# None means "the library's default" for XGBoost's scikit-learn wrapper, so every XGBoost entry admits it.
XGBOOST: dict[str, Rule] = {
    "n_estimators": (POSITIVE_INT,),
    "learning_rate": (FRACTION,),
    "max_depth": (Span(int, 0),),  # 0: no limit (hist, lossguide)
    "max_leaves": (Span(int, 0),),
    "max_bin": (Span(int, 2),),
    "min_child_weight": (NON_NEGATIVE,),
    "max_delta_step": (NON_NEGATIVE,),
    "subsample": (FRACTION,),
    "colsample_bytree": (FRACTION,),
    "colsample_bylevel": (FRACTION,),
    "colsample_bynode": (FRACTION,),
    "reg_alpha": (NON_NEGATIVE,),
    "reg_lambda": (NON_NEGATIVE,),
    "gamma": (NON_NEGATIVE,),
    "scale_pos_weight": (Span(float, 0, open_low=True),),
    "num_parallel_tree": (POSITIVE_INT,),
    "grow_policy": ("depthwise", "lossguide"),
    "tree_method": ("hist", "approx", "exact"),
}
LOGREG: dict[str, Rule] = {
    "C": (Span(float, 0, open_low=True),),
    "l1_ratio": (Span(float, 0, 1),),
    "solver": ("lbfgs", "liblinear", "newton-cg", "newton-cholesky", "sag", "saga"),
    "max_iter": (POSITIVE_INT,),
    "tol": (NON_NEGATIVE,),
    "fit_intercept": BOOLEAN,
    "intercept_scaling": (Span(float, 0, open_low=True),),
    "class_weight": (None, "balanced"),
}
RANDOM_FOREST: dict[str, Rule] = {
    "n_estimators": (POSITIVE_INT,),
    "max_depth": (POSITIVE_INT, None),
    "min_samples_split": (Span(int, 2), FRACTION),
    "min_samples_leaf": (POSITIVE_INT, Span(float, 0, 1, open_low=True, open_high=True)),
    "min_weight_fraction_leaf": (Span(float, 0, 0.5),),
    "max_features": (POSITIVE_INT, FRACTION, "sqrt", "log2", None),
    "max_leaf_nodes": (Span(int, 2), None),
    "min_impurity_decrease": (NON_NEGATIVE,),
    "ccp_alpha": (NON_NEGATIVE,),
    # classification, then regression (RandomForestRegressor): the task picks the estimator, the fit the criterion
    "criterion": ("gini", "entropy", "log_loss", "squared_error", "absolute_error", "friedman_mse", "poisson"),
    "bootstrap": BOOLEAN,
    "class_weight": (None, "balanced", "balanced_subsample"),
}
RIDGE: dict[str, Rule] = {
    "alpha": (NON_NEGATIVE,),
    "fit_intercept": BOOLEAN,
    "solver": ("auto", "svd", "cholesky", "lsqr", "sparse_cg", "sag", "saga", "lbfgs"),
    "max_iter": (POSITIVE_INT, None),
    "tol": (NON_NEGATIVE,),
    "positive": BOOLEAN,
}
FAMILIES: dict[str, dict[str, Rule]] = {
    "xgboost": {name: (*rule, None) for name, rule in XGBOOST.items()},
    "logreg": LOGREG,
    "random_forest": RANDOM_FOREST,
    "ridge": RIDGE,
}
# Names a user may reach for that are set elsewhere: a clearer message than "unknown".
SET_ELSEWHERE = {
    "random_state": "set by the top-level `seed`",
    "seed": "set by the top-level `seed`",
    "n_jobs": "set by `train.n_jobs`",
    "early_stopping_rounds": "set by `model.early_stopping_rounds`",
    "eval_metric": "fixed: tune scores the task's objective (tune.objective), train logs the task's metrics",
    "objective": "fixed by the task: binary:logistic, multi:softprob or reg:squarederror",
    "num_class": "fixed by the contract's classes",
}


def describe(rule: Rule) -> str:
    """What a rule admits, for messages: ``an integer >= 1, or null``."""
    return ", or ".join(_describe_alternative(alt) for alt in rule)


def _describe_alternative(alt: Span | str | bool | None) -> str:
    if isinstance(alt, Span):
        return str(alt)
    return "null" if alt is None else str(alt).lower() if isinstance(alt, bool) else repr(alt)


def admits(rule: Rule, value: Any) -> bool:
    """Whether ``value`` is one of the rule's alternatives. An integer is judged only by the integer spans when
    the rule has any (scikit-learn reads ``min_samples_split: 1`` as a count, not as the fraction 1.0)."""
    spans = [a for a in rule if isinstance(a, Span)]
    if isinstance(value, int) and not isinstance(value, bool) and any(s.kind is int for s in spans):
        spans = [s for s in spans if s.kind is int]
    literals = [a for a in rule if not isinstance(a, Span)]
    literal = any(value is a if a is None or isinstance(a, bool) else value == a for a in literals)
    return literal or any(s.admits(value) for s in spans)


def check_hyperparameters(family: str, params: dict[str, Any], *, where: str) -> None:
    """Refuse unknown names and values outside the family's allowed types and ranges (``where.name`` in messages)."""
    problems = parameter_problems(family, params, where=where)
    if problems:
        raise ConfigError("\n  ".join(["invalid hyper-parameters:", *problems]))


def parameter_problems(family: str, params: dict[str, Any], *, where: str) -> list[str]:
    """Every unknown name and every value its rule does not admit."""
    rules = FAMILIES[family]
    problems = _name_problems(family, params, where=where)
    for name, value in params.items():
        if name in rules and not admits(rules[name], value):
            problems.append(f"{where}.{name}: expected {describe(rules[name])}, got {value!r}")
    return problems


def _name_problems(family: str, names: Iterable[str], *, where: str) -> list[str]:
    rules = FAMILIES[family]
    elsewhere = [f"{where}.{n}: {SET_ELSEWHERE[n]}, not here" for n in names if n in SET_ELSEWHERE]
    unknown = sorted(n for n in names if n not in rules and n not in SET_ELSEWHERE)
    if unknown:
        known = ", ".join(sorted(rules))
        elsewhere.append(f"{where}: unknown hyper-parameter(s) {unknown} for {family} (typo?); known: {known}")
    return elsewhere


def search_space_problems(family: str, space: dict[str, SearchDimension], *, where: str) -> list[str]:
    """Unknown names, and bounds or choices that reach outside what the family accepts."""
    rules = FAMILIES[family]
    problems = _name_problems(family, space, where=where)
    for name, dim in space.items():
        if name in rules:
            problems += _dimension_problems(rules[name], dim, where=f"{where}.{name}")
    return problems


def _dimension_problems(rule: Rule, dim: SearchDimension, *, where: str) -> list[str]:
    allowed = describe(rule)
    if dim.distribution == "categorical":
        bad = [c for c in dim.choices or () if not admits(rule, c)]
        return [f"{where}.choices: {bad} not allowed; expected {allowed}"] if bad else []
    spans = [a for a in rule if isinstance(a, Span)]
    if dim.distribution == "int":  # whole numbers: judged as counts where the rule has integer spans (``admits``)
        ends: tuple[float, float] = (int(dim.low), int(dim.high))  # type: ignore[arg-type]
        spans = [s for s in spans if s.kind is int] or spans
    else:
        ends, spans = (float(dim.low), float(dim.high)), [s for s in spans if s.kind is float]  # type: ignore[arg-type]
        if not spans:
            return [f"{where}: {dim.distribution} samples fractional numbers, but it takes {allowed}"]
    if not any(s.admits(ends[0]) and s.admits(ends[1]) for s in spans):  # a span is convex: its ends suffice
        return [f"{where}: the range [{ends[0]:g}, {ends[1]:g}] reaches outside what is allowed ({allowed})"]
    return []


def check_model_section(
    family: str, params: dict[str, Any], space: dict[str, SearchDimension], *, where: str = "params.yaml: model"
) -> None:
    """Everything about ``model`` that would otherwise fail at trial 0 or fit quietly wrong, in one error."""
    problems = parameter_problems(family, params, where=f"{where}.params")
    problems += search_space_problems(family, space, where=f"{where}.search_space")
    problems = problems or combination_problems(family, params, space, where=where)
    if problems:
        raise ConfigError("\n  ".join(["invalid hyper-parameters:", *problems]))


# LogisticRegression: only saga mixes L1 and L2 (0 < l1_ratio < 1); liblinear takes 0 or 1; the others only 0.
_L1_RATIOS = {"lbfgs": (0,), "newton-cg": (0,), "newton-cholesky": (0,), "sag": (0,), "liblinear": (0, 1)}


def combination_problems(
    family: str, params: dict[str, Any], space: dict[str, SearchDimension], *, where: str
) -> list[str]:
    """Values that are each allowed but that a fit refuses together; every value the search may pick counts."""
    if family != "logreg":
        return []
    solvers, solver_key = _possible(params, space, "solver", "newton-cholesky")  # modeling.LOGREG_DEFAULTS
    ratios, ratio_key = _possible(params, space, "l1_ratio", 0.0)
    dim = space.get("l1_ratio")
    continuous = dim is not None and dim.distribution in ("float", "log_float")
    shown = f"[{ratios[0]:g}, {ratios[-1]:g}]" if continuous else " and ".join(f"{r:g}" for r in ratios)
    problems = []
    for solver in solvers:
        allowed = _L1_RATIOS.get(solver)
        if allowed is not None and (continuous or any(r not in allowed for r in ratios)):
            problems.append(
                f"{where}.{solver_key}: solver {solver!r} takes l1_ratio {' or '.join(map(str, allowed))} only, "
                f"but {where}.{ratio_key} gives {shown}; solver 'saga' takes any mix of L1 and L2"
            )
    return problems


def _possible(
    params: dict[str, Any], space: dict[str, SearchDimension], name: str, default: Any
) -> tuple[list[Any], str]:
    """The values ``name`` can take in a trial (a numeric range by its ends), and the key they come from."""
    dim = space.get(name)
    if dim is None:
        return [params.get(name, default)], f"params.{name}"
    if dim.distribution == "categorical":
        return list(dim.choices or ()), f"search_space.{name}"
    return [dim.low, dim.high], f"search_space.{name}"
