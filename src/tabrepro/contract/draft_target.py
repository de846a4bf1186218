"""Drafting the target of a contract (``contract.draft``): its task, and the fields that task declares.

The task is the one asked for (``--task``; ``--positive`` implies binary) or read from the column: numbers with
more than ``MAX_CLASSES`` distinct values pose a regression (its observed range rounded outward as ``min``/``max``,
a ``unit`` left to fill in); two labels a binary task (the rarer label drafted as positive unless given);
3..``MAX_CLASSES`` labels a multiclass one, its classes SORTED (a stable order that does not depend on the rows'
order: it is the column order of every probability output). What the data cannot settle (a few distinct numbers:
classes or a quantity? many labels) is drafted one way with a ``DECIDE:`` line.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pandas as pd

from tabrepro.contract.grammar import NUMBER_SYNTAX
from tabrepro.contract.spec import TASKS
from tabrepro.errors import DataError

MAX_CLASSES = 20  # more distinct labels than this: numbers are a quantity, text a multiclass target to question
_NUMBER = re.compile(NUMBER_SYNTAX)


def draft_target(
    values: pd.Series, *, target: str, positive: str | None, task: str | None, missing: frozenset[str], source: str
) -> tuple[dict[str, Any], str, tuple[str, ...]]:
    """The target's fields, a remark (its balance or range, its rows without a label: then drafted
    ``missing: drop`` with a ``DECIDE:``), and what to decide about its task."""
    absent = values.isin(missing)
    counts = values[~absent].value_counts()
    chosen, decide = _task(counts, positive=positive, task=task, target=target, source=source)
    if chosen == "binary":
        fields, remark, more = _binary(counts, positive, target=target, source=source)
    elif chosen == "multiclass":
        fields, remark, more = _multiclass(counts, target=target, source=source)
    else:
        fields, remark, more = _regression(counts, target=target, source=source)
    if absent.any():
        fields["missing"] = "drop"
        remark += f"; DECIDE: {int(absent.sum())} row(s) have no label: drop them (as drafted) or fix the data"
    return fields, remark, (*decide, *more)


def _task(
    counts: pd.Series, *, positive: str | None, task: str | None, target: str, source: str
) -> tuple[str, tuple[str, ...]]:
    if task is not None:
        if task not in TASKS:
            raise DataError(f"{source}: --task {task!r} is not one of {', '.join(TASKS)}")
        if positive is not None and task != "binary":
            raise DataError(f"{source}: --positive applies to a binary target, not to --task {task}")
        return task, ()
    if positive is not None:
        return "binary", ()
    distinct, numbers = len(counts), as_numbers([str(t) for t in counts.index])
    if numbers is not None and distinct > MAX_CLASSES:
        return "regression", ()
    if distinct <= 2:
        return "binary", ()
    if numbers is not None:
        return "multiclass", (
            f"{distinct} distinct numbers: classes (task: multiclass, as drafted) or a quantity (then task: "
            "regression, with min/max instead of classes)?",
        )
    if distinct > MAX_CLASSES:
        return "multiclass", (f"{distinct} labels: that many classes? group the rare ones upstream, or fewer classes",)
    return "multiclass", ()


def _binary(
    counts: pd.Series, positive: str | None, *, target: str, source: str
) -> tuple[dict[str, Any], str, tuple[str, ...]]:
    decide: tuple[str, ...] = ()
    if positive is None and len(counts) == 2:
        ranked = sorted(counts.items(), key=lambda kv: (kv[1], str(kv[0])))
        positive = str(ranked[0][0])
        decide = (f"positive: the rarer label {positive!r} as drafted; the event to predict (give --positive)?",)
    if positive is not None and positive not in counts.index:
        raise DataError(f"{source}: --positive {positive!r} is not a label of {target!r}: {list(counts.index)}")
    if len(counts) != 2:
        raise DataError(f"{source}: target column {target!r} has {len(counts)} labels {list(counts.index)}, not 2")
    negative = next(str(t) for t in counts.index if t != positive)
    fields = {"column": target, "positive": positive, "negative": negative}
    return fields, f"{100 * counts[positive] / counts.sum():.1f} % positive", decide


def _multiclass(counts: pd.Series, *, target: str, source: str) -> tuple[dict[str, Any], str, tuple[str, ...]]:
    if len(counts) < 3:
        raise DataError(
            f"{source}: target column {target!r} has {len(counts)} labels {list(counts.index)}; a multiclass target "
            "needs three or more (two: a binary target, with --positive)"
        )
    classes = sorted(str(t) for t in counts.index)
    shares = ", ".join(f"{c} {100 * counts[c] / counts.sum():.1f} %" for c in classes)
    return {"column": target, "task": "multiclass", "classes": classes}, f"sorted; {shares}", ()


def _regression(counts: pd.Series, *, target: str, source: str) -> tuple[dict[str, Any], str, tuple[str, ...]]:
    texts = [str(t) for t in counts.index]
    numbers = as_numbers(texts)
    if numbers is None:
        odd = [t for t in texts if as_numbers([t]) is None][:5]
        raise DataError(f"{source}: target column {target!r} holds values that are not numbers {odd}; not a regression")
    integer = all(v % 1 == 0 for v in numbers)
    lo, hi = min(numbers), max(numbers)
    low, high = outward(lo, hi, integer=integer)
    fields = {"column": target, "task": "regression", "min": low, "max": high, "unit": ""}
    remark = f"observed {show_number(lo)} .. {show_number(hi)}; widen the range to what new data may hold"
    decide = ('unit: the target\'s unit, for reports (e.g. "thousand USD")',)
    return fields, remark, decide


def as_numbers(texts: list[str]) -> list[float] | None:
    """The finite numbers the grammar reads from ``texts``, or None if any is not one."""
    values = []
    for text in texts:
        value = float(text) if _NUMBER.fullmatch(text) else math.nan
        if not math.isfinite(value):
            return None
        values.append(value)
    return values


def outward(lo: float, hi: float, *, integer: bool) -> tuple[float, float]:
    """The observed range rounded outward to two significant digits of its larger bound (integers: to whole
    numbers at least), so the draft's limits read as round numbers that hold every observed value."""
    largest = max(abs(lo), abs(hi))
    step = 10.0 ** (math.floor(math.log10(largest)) - 1) if largest > 0 else 1.0
    step = max(step, 1.0) if integer else step
    # round the quotients first: 0.56 / 0.01 is 56.000000000000007 in floating point, not above 56
    down, up = math.floor(round(lo / step, 9)) * step, math.ceil(round(hi / step, 9)) * step
    return round(down, 12), round(up, 12)


def show_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.6g}"
