"""Writing a drafted contract (``contract.draft``) as the text of ``conf/contracts/<name>.yaml``, with its comments.

The layout is the one the committed contracts use: one flow mapping per feature, every raw token double-quoted
(YAML reads an unquoted Yes/No as a boolean), and comments for what a human must look at: a ``DECIDE:`` line above
each column the data could not settle, a remark after a column (its observed range when rounded, its missing rows),
and the columns the draft does not declare, with why.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tabrepro.contract.draft import ColumnDraft, Draft

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
# words YAML 1.1 reads as booleans or null: a key spelt so is quoted
_RESERVED = {"y", "n", "yes", "no", "true", "false", "on", "off", "null", "~"}


def render_draft(draft: Draft) -> str:
    """The draft as YAML text that ``load_contract`` reads once the DECIDE comments are settled."""
    lines = [
        f"# Drafted by `tabrepro contract draft` from {draft.source} ({draft.rows} rows).",
        '# A starting point for review, not a finished contract: settle every "DECIDE:" comment, then delete it.',
        "# Ranges are the observed ones rounded outward: widen them to what new data may hold (the service and",
        "# prepare refuse values outside them). Quote every raw token: YAML reads an unquoted Yes/No as a boolean.",
        f"name: {_scalar(draft.name)}",
        'description: ""',
        f"source: {_scalar(draft.source)}",
        f"format: {draft.fmt}",
        *_id_lines(draft),
        *_missing_lines(draft),
        *_target_lines(draft),
        "features:",
    ]
    for column in draft.features:
        lines += _feature_lines(column)
    if draft.ignored:
        lines.append("# not declared, so prepare drops them (declare one as a feature to use it):")
        lines += [f"#   {name}: {why}" for name, why in draft.ignored.items()]
    lines += [
        "segments: []  # features whose levels get their own metrics in evaluate, e.g. [a categorical]",
        "# policy: the defaults apply (a gate relative to the baselines, every error costing 1); for absolute bars",
        f"# or costs in this data set's unit, write conf/policy/{draft.name}.yaml (see conf/policy/telco_churn.yaml)",
    ]
    return "\n".join(lines) + "\n"


def _target_lines(draft: Draft) -> list[str]:
    """The target's fields: a binary one's labels as always; a multiclass one's task and classes; a regression
    one's task, range and unit; the remark after the last label (binary) or the task's fields."""
    target = draft.target
    lines = ["target:", *[f"  # DECIDE: {question}" for question in draft.target_decide]]
    lines.append(f"  column: {_key(target['column'])}")
    if "task" not in target:  # binary: the layout every contract has had
        lines += [f"  positive: {_token(target['positive'])}"]
        lines += [f"  negative: {_token(target['negative'])}  # {draft.target_remark}"]
    else:
        lines.append(f"  task: {target['task']}")
        if target["task"] == "multiclass":
            lines.append(f"  classes: {_value(target['classes'])}  # {draft.target_remark}")
        else:
            lines += [f"  min: {_value(target['min'])}  # {draft.target_remark}", f"  max: {_value(target['max'])}"]
            lines.append(f"  unit: {_token(target['unit'])}")
    return [*lines, *([f"  missing: {target['missing']}"] if "missing" in target else [])]


def _id_lines(draft: Draft) -> list[str]:
    candidates = draft.id_candidates
    if not candidates:
        return ["# id_column: none; no column is a key (unique, non-empty in every row and no free text)"]
    line = f"id_column: {_key(candidates[0])}  # unique and non-empty in every row: check that it is a key"
    if len(candidates) == 1:
        return [line]
    others = ", ".join(candidates[1:])
    return [f"# DECIDE: {others} too are unique and non-empty in every row (not declared); which is the key?", line]


def _missing_lines(draft: Draft) -> list[str]:
    tokens = list(draft.missing_values)
    found = "; ".join(f"{_token(t)} in {', '.join(columns)}" for t, columns in draft.missing_values.items() if columns)
    remark = f"found: {found}" if found else "none found"
    lines = [f"missing_values: [{', '.join(_token(t) for t in tokens)}]  # {remark}"]
    if any(t != "" for t in tokens):
        lines.insert(0, "# DECIDE: these tokens mean missing in every column; drop any that is a real value")
    return lines


def _feature_lines(column: ColumnDraft) -> list[str]:
    lines = [f"  # DECIDE: {question}" for question in column.decide]
    fields = ", ".join(f"{key}: {_value(value)}" for key, value in column.spec.items())
    remark = f"  # {column.remark}" if column.remark else ""
    return [*lines, f"  {_key(column.name)}: {{{fields}}}{remark}"]


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_token(v) for v in value) + "]"
    if isinstance(value, float | int):
        return _yaml_number(float(value))
    return _scalar(str(value))


def _yaml_number(value: float) -> str:
    """A number YAML 1.1 reads back as one: whole numbers as integers, "1e-05" written "1.0e-05"."""
    if value.is_integer():
        return str(int(value))
    text = repr(value)
    mantissa, _, exponent = text.partition("e")
    return f"{mantissa if '.' in mantissa else mantissa + '.0'}e{exponent}" if exponent else text


def _key(name: str) -> str:
    plain = _PLAIN_KEY.fullmatch(name) and name.lower() not in _RESERVED
    return name if plain else json.dumps(name)


def _token(token: str) -> str:
    return json.dumps(token, ensure_ascii=False)


def _scalar(text: str) -> str:
    return (
        text if re.fullmatch(r"[A-Za-z_./][A-Za-z0-9_./-]*", text) and text.lower() not in _RESERVED else _token(text)
    )
