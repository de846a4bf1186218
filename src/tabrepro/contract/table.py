"""Parse a raw table by its data contract and validate it, collecting every problem into one report.

Raw tables are read as text (every column a string) so that parsing is done here, by the contract, and not by a
CSV reader's guesses. ``parse_table`` turns text into typed columns and records the values it could not parse;
``validate_table`` runs the contract's pandera schema lazily and raises one ``ContractViolation`` that lists
every failing column and check with example values.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd
import pandera.pandas as pa

from tabrepro.contract.spec import DataContract, FeatureSpec, build_schema
from tabrepro.errors import DataError

_FRIENDLY = {
    "column_in_dataframe": "column is missing from the data",
    "not_nullable": "missing value in a column that may not be missing",
    "field_uniqueness": "duplicate values in a column that must be unique",
}
_MAX_EXAMPLES = 5


@dataclass(frozen=True)
class Problem:
    """One failing column and check, with where it fails and what was seen there."""

    column: str
    check: str
    rows: tuple[object, ...] = ()
    values: tuple[object, ...] = ()

    def describe(self, row_label: str) -> str:
        head = f"column {self.column!r}: {self.check}"
        if not self.rows:
            return head
        examples = ", ".join(
            f"{row_label} {r}: {v!r}"
            for r, v in zip(self.rows[:_MAX_EXAMPLES], self.values[:_MAX_EXAMPLES], strict=True)
        )
        more = "" if len(self.rows) <= _MAX_EXAMPLES else ", ..."
        return f"{head} ({len(self.rows)} rows; {examples}{more})"


class ContractViolation(DataError):
    """The data broke its contract. ``problems`` holds every failure; ``str()`` is the full report."""

    def __init__(self, contract: str, source: str, problems: list[Problem], row_label: str = "row"):
        self.contract, self.source, self.problems = contract, source, problems
        lines = [p.describe(row_label) for p in problems]
        super().__init__(
            f"{source} breaks data contract {contract!r}: {len(problems)} problem(s)\n  - " + "\n  - ".join(lines)
        )


def parse_table(raw: pd.DataFrame, contract: DataContract) -> tuple[pd.DataFrame, list[Problem]]:
    """Text columns -> typed columns per the contract. Returns the parsed frame and the unparseable values.

    Columns the contract does not declare are dropped; missing ones are left for the schema to report.
    Numeric and boolean features become float64 (booleans 0/1), categoricals and the id/target stay text.
    """
    out: dict[str, pd.Series] = {}
    problems: list[Problem] = []
    for name in contract.columns:
        if name not in raw.columns:
            continue
        text = raw[name].astype("str").str.strip()
        missing = text.isna() | text.isin(contract.missing_values)
        spec = contract.features.get(name)
        parsed, bad = _parse_column(text, missing, spec)
        if bad.any():
            problems.append(Problem(name, _expected(spec), tuple(text.index[bad]), tuple(text[bad].tolist())))
        out[name] = parsed
    return pd.DataFrame(out, index=raw.index), problems


def validate_table(
    parsed: pd.DataFrame,
    contract: DataContract,
    *,
    source: str,
    parse_problems: Iterable[Problem] = (),
    row_label: str = "row",
) -> None:
    """Raise ``ContractViolation`` listing parse problems and every failing schema check; else return."""
    problems = list(parse_problems)
    if parsed.empty:
        problems.append(Problem("*", "the table has no data rows"))
    else:
        problems += _schema_problems(parsed, contract, _unparsed_cells(problems))
    if problems:
        raise ContractViolation(contract.name, source, problems, row_label)


def _parse_column(text: pd.Series, missing: pd.Series, spec: FeatureSpec | None) -> tuple[pd.Series, pd.Series]:
    if spec is None or spec.type == "categorical":
        return text.where(~missing).astype("str"), pd.Series(False, index=text.index)
    if spec.type == "numeric":
        parsed = pd.to_numeric(text.where(~missing), errors="coerce").astype("float64")
    else:
        mapping = {t: 1.0 for t in spec.true_values} | {f: 0.0 for f in spec.false_values}
        parsed = text.map(mapping).astype("float64")
    return parsed, ~missing & parsed.isna()


def _expected(spec: FeatureSpec | None) -> str:
    if spec is not None and spec.type == "boolean":
        return f"expected one of {[*spec.true_values, *spec.false_values]} (boolean)"
    return "expected a number"


def _unparsed_cells(problems: list[Problem]) -> set[tuple[str, object]]:
    return {(p.column, r) for p in problems for r in p.rows}


def _schema_problems(parsed: pd.DataFrame, contract: DataContract, skip: set[tuple[str, object]]) -> list[Problem]:
    try:
        build_schema(contract).validate(parsed, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    else:
        return []
    problems = []
    for (column, check), group in cases.groupby(["column", "check"], sort=False, dropna=False):
        column = group["failure_case"].iloc[0] if check == "column_in_dataframe" else column
        keep = [(r, v) for r, v in zip(group["index"], group["failure_case"], strict=True) if (column, r) not in skip]
        if check == "column_in_dataframe":
            problems.append(Problem(str(column), _FRIENDLY[check]))
        elif keep:
            rows, values = zip(*keep, strict=True)
            problems.append(Problem(str(column), _FRIENDLY.get(check, f"fails {check}"), rows, values))
    return problems
