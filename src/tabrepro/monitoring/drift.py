"""Reference statistics of the training data, the baseline that drift checks compare live data against, and
``DriftAccumulator``, which compares current data with them chunk by chunk (or partition by partition, merged)
and decides whether to retrain.

The reference keeps, per numeric feature and for the packaged model's scores, a seeded sample of at most
``REFERENCE_SAMPLE`` values, and per level its count: the KS test is two-sample against that sample and the
chi-squared test is on the contingency of reference and current counts, so their p-values account for the
reference's own sampling error and stay honest however many current rows there are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from tabrepro.artefacts import NumericReference, ReferenceStats, ScoreReference, validate_artefact
from tabrepro.config.params import DriftParams
from tabrepro.contract.spec import DataContract
from tabrepro.contract.table import Problem, parse_table
from tabrepro.errors import DataError
from tabrepro.monitoring.decision import decide_retrain, judge_entry
from tabrepro.monitoring.stats import bin_counts
from tabrepro.monitoring.tally import LevelTally, NumericTally

N_QUANTILES = 101
REFERENCE_SAMPLE = 5_000  # values per numeric feature (and of the scores) kept for the two-sample KS test
R = TypeVar("R", ReferenceStats, ScoreReference)
# what the score drift compares, per task: named in the report (absent for binary, whose report is unchanged)
_SCORES_OF: dict[str, dict[str, str]] = {"binary": {}, "regression": {"of": "prediction"}}
_SCORES_OF["multiclass"] = {"of": "predicted class"}
_SCORES_NAME = {"binary": "predicted probabilities", "regression": "predictions", "multiclass": "predicted classes"}


def compute_reference_stats(
    train: pd.DataFrame, contract: DataContract, *, bins: int, sample_size: int = REFERENCE_SAMPLE, seed: int = 0
) -> dict[str, Any]:
    """Per-feature statistics of the (parsed, unencoded) training split.

    Numerics: quantile bin edges and the share of rows per bin (for PSI), a seeded sample of at most
    ``sample_size`` values (for the two-sample KS test), a quantile sketch (for figures), moments.
    Booleans and categoricals: level frequencies and counts. Every feature: its missing rate.
    """
    if train.empty:
        raise ValueError("cannot compute reference statistics of an empty training split")
    features = {}
    seeds = iter(np.random.SeedSequence(seed).spawn(len(contract.features)))
    for name, spec in contract.features.items():
        column, feature_seed = train[name], next(seeds)
        stats: dict[str, Any] = {"type": spec.type, "missing_rate": _rate(column.isna())}
        if spec.type == "numeric":
            values = column.dropna().to_numpy(dtype=float)
            stats |= _numeric_stats(values, bins=bins) | {"sample": _sample(values, sample_size, feature_seed)}
        else:
            stats |= _level_stats(column.dropna())
        features[name] = stats
    return {"contract": contract.name, "rows": len(train), "features": features}


def compute_score_reference(
    probabilities: np.ndarray, *, bins: int = 10, sample_size: int = REFERENCE_SAMPLE, seed: int = 0
) -> dict[str, Any]:
    """The distribution of the packaged model's predicted probabilities on the test split, the reference that the
    drift of live predictions is measured against (same layout as a numeric feature's statistics)."""
    values = np.asarray(probabilities, dtype=float)
    if values.size == 0:
        raise ValueError("cannot compute a score reference from no predictions")
    return {"rows": int(values.size), **_numeric_stats(values, bins=bins), "sample": _sample(values, sample_size, seed)}


def watched_values(output: np.ndarray, *, task: str) -> np.ndarray:
    """The values drift tallies: the scores themselves, or (multiclass) the predicted class's index."""
    values = np.asarray(output)
    if task == "multiclass":
        if values.ndim != 2:
            raise ValueError(f"multiclass scores must be (rows, classes) probabilities, got shape {values.shape}")
        return values.argmax(axis=1).astype(float) if values.shape[0] else np.empty(0)
    return np.asarray(values, dtype=float).reshape(-1)


def _numeric_stats(values: np.ndarray, *, bins: int) -> dict[str, Any]:
    if values.size == 0:
        return {"edges": [], "fractions": [], "quantiles": []}
    edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1))[1:-1])
    counts = bin_counts(values, edges)
    return {
        "edges": _floats(edges),
        "fractions": _floats(counts / values.size),
        "quantiles": _floats(np.quantile(values, np.linspace(0, 1, N_QUANTILES))),
        "mean": round(float(values.mean()), 6),
        "std": round(float(values.std()), 6),
    }


def _sample(values: np.ndarray, size: int, seed: int | np.random.SeedSequence) -> list[float]:
    """Every value when there are at most ``size``, else a seeded sample of ``size`` without replacement; sorted,
    at full precision (rounding would move values across the current data's ties)."""
    if values.size > size:
        values = np.random.default_rng(seed).choice(values, size=size, replace=False)
    return [float(x) for x in np.sort(values)]


def _level_stats(column: pd.Series) -> dict[str, Any]:
    counts = column.astype("str").value_counts().sort_index()
    total = int(counts.sum())
    return {
        "frequencies": {str(level): round(int(c) / total, 6) for level, c in counts.items()},
        "counts": {str(level): int(c) for level, c in counts.items()},
    }


def _rate(mask: pd.Series) -> float:
    return round(float(mask.mean()), 6)


def _floats(array: np.ndarray) -> list[float]:
    return [round(float(x), 6) for x in array]


class DriftAccumulator:
    """Current data against the training reference and the packaged model's scores, fed in chunks.

    ``update`` takes each chunk as ``validation.parse_table`` returns it (its parse problems too: values that do
    not parse are counted as unknown, not as missing) and the probabilities of the chunk's rows that were scored.
    Everything kept is an exact count or sum, so one pass, any chunking, and accumulators of disjoint parts of the
    data combined with ``merge`` (partitions on Dask workers) all give the same report.
    """

    def __init__(
        self,
        reference_stats: ReferenceStats | Mapping[str, Any],
        score_reference: ScoreReference | Mapping[str, Any] | None,
        contract: DataContract,
    ) -> None:
        """The references as read from their files, or as ``compute_reference_stats`` / ``compute_score_reference``
        return them (validated here the same way)."""
        stats = _as(ReferenceStats, reference_stats, what="the reference statistics")
        _check_reference(stats, contract)
        self.contract, self.rows, self.reference_rows = contract, 0, stats.rows
        self.reference_stats: ReferenceStats = stats
        self.score_reference: ScoreReference | None = None
        self.tallies: dict[str, NumericTally | LevelTally] = {}
        for name, spec in contract.features.items():
            reference = stats.features[name].model_dump(mode="json")
            if spec.type == "numeric":
                self.tallies[name] = NumericTally(reference, low=spec.min, high=spec.max)
            else:
                levels = list(spec.values or ()) if spec.type == "categorical" else ["0.0", "1.0"]
                self.tallies[name] = LevelTally(reference, levels=levels)
        self.scores = None
        if score_reference is not None:
            scores = _as(ScoreReference, score_reference, what="the score reference")
            if scores.sample is None:
                raise DataError(
                    "the serving manifest's score reference has no sample for the two-sample KS test (packaged "
                    "before it was kept): run `dvc repro package`"
                )
            _check_score_reference(scores, contract)
            self.scores, self.score_reference = NumericTally(scores.model_dump(mode="json")), scores

    def merge(self, other: DriftAccumulator) -> DriftAccumulator:
        """Add ``other``, an accumulator of other rows against the same references; returns ``self``."""
        if other.contract.name != self.contract.name or other.tallies.keys() != self.tallies.keys():
            raise ValueError("cannot merge drift accumulators of different contracts")
        if (self.scores is None) != (other.scores is None):
            raise ValueError("cannot merge a drift accumulator with a score reference and one without")
        self.rows += other.rows
        for name, tally in self.tallies.items():
            tally.merge(other.tallies[name])  # type: ignore[arg-type]  # same name, same kind of tally
        if self.scores is not None and other.scores is not None:
            self.scores.merge(other.scores)
        return self

    def update(
        self, parsed: pd.DataFrame, probabilities: np.ndarray | None = None, *, problems: Iterable[Problem] = ()
    ) -> None:
        """Add one parsed chunk; ``probabilities`` are the scores of its scored rows (any number, none included):
        the task's, as ``monitoring.scores.graph_output`` gives them (multiclass: the (rows, classes) matrix)."""
        missing = [name for name in self.contract.features if name not in parsed.columns]
        if missing:
            raise DataError(f"chunk lacks feature column(s) {missing} of contract {self.contract.name!r}")
        unparsed = {p.column: p for p in problems}
        for name, tally in self.tallies.items():
            problem = unparsed.get(name)
            mask = parsed.index.isin(problem.rows) if problem else None
            tokens = [str(v) for v in problem.values] if problem else []
            column = parsed[name]
            tally.add(
                column.to_numpy(dtype=float) if isinstance(tally, NumericTally) else column,
                unparsed=mask,
                tokens=tokens,
            )
        self.rows += len(parsed)
        if probabilities is not None and len(probabilities):
            if self.scores is None:
                raise ValueError("probabilities given, but the accumulator has no score reference")
            self.scores.add(watched_values(probabilities, task=self.contract.target.task))

    def update_text(self, chunk: pd.DataFrame, probabilities: np.ndarray | None = None) -> None:
        """Add one chunk of raw text rows (as the raw reader gives them), parsed by the contract here."""
        parsed, problems = parse_table(chunk, self.contract)
        self.update(parsed, probabilities, problems=problems)

    def report(self, params: DriftParams) -> dict[str, Any]:
        """Per-feature statistics and verdicts, the drift of the predicted probabilities, and the decision."""
        if self.rows < params.min_rows:
            raise DataError(f"{self.rows} current row(s): too few to judge drift (drift.min_rows is {params.min_rows})")
        features = {name: judge_entry(tally.summarize(), params) for name, tally in self.tallies.items()}
        unknown = sum(t.unknown for t in self.tallies.values())
        present = sum(t.rows - t.missing for t in self.tallies.values())
        score = None
        if self.scores is not None and self.scores.rows >= params.min_rows:
            score = judge_entry(self.scores.summarize(), params, score=True) | _SCORES_OF[self.contract.target.task]
        elif self.scores is not None:
            score = {"values": self.scores.rows, "note": f"fewer scored rows than drift.min_rows ({params.min_rows})"}
        return {
            "rows": self.rows,
            "reference_rows": self.reference_rows,
            "features": features,
            "unknown_share": round(unknown / present, 6) if present else 0.0,
            "score": score,
            "decision": decide_retrain(features, score, params, scores=_SCORES_NAME[self.contract.target.task]),
        }


def _as(model: type[R], value: R | Mapping[str, Any], *, what: str) -> R:
    return value if isinstance(value, model) else validate_artefact(value, model, source=what, error=DataError)


def _check_score_reference(scores: ScoreReference, contract: DataContract) -> None:
    """A multiclass model's score reference holds its predicted classes, one bin per class (``monitoring.scores.
    compute_task_score_reference``); a reference of other numbers would be compared with class indices."""
    n_classes = len(contract.target.labels)
    if contract.target.task == "multiclass" and list(scores.edges) != [k + 0.5 for k in range(n_classes - 1)]:
        raise DataError(
            f"the serving manifest's score reference is not of the {n_classes} predicted classes of contract "
            f"{contract.name!r} (edges {list(scores.edges)[:4]}): package it with "
            "`monitoring.scores.compute_task_score_reference` (`dvc repro package`)"
        )


def _check_reference(stats: ReferenceStats, contract: DataContract) -> None:
    if stats.contract != contract.name:
        raise DataError(
            f"the reference statistics are of contract {stats.contract!r}, the model's contract is {contract.name!r}"
        )
    features = stats.features
    absent = [n for n in contract.features if n not in features]
    if absent:
        raise DataError(f"the reference statistics lack feature(s) {absent} of contract {contract.name!r}")
    wrong = [n for n, spec in contract.features.items() if features[n].type != spec.type]
    if wrong:
        raise DataError(f"the reference statistics give other types than contract {contract.name!r} for {wrong}")
    old = [
        n
        for n, f in features.items()
        if (f.sample is None if isinstance(f, NumericReference) else f.counts is None) and n in contract.features
    ]
    if old:
        raise DataError(
            f"the reference statistics have no sample or level counts for {old} (written before the two-sample "
            "tests): run `dvc repro featurize`"
        )
