"""The service's Prometheus metrics (served on ``/metrics`` with BentoML's own), per model where it matters.

Per model, labelled by ``role`` (primary / candidate / fallback) and ``model_version``: requests and records scored, the
scoring latency (the ONNX call, validation excluded) and the score distribution, so that a shadow or canary
candidate can be compared with the primary on one dashboard.
"""

from __future__ import annotations

from typing import Any

import bentoml
import numpy as np

from tabrepro.serving.answers import one_per_row

_MODEL = ["role", "model_version"]
_SCORES = [i / 10 for i in range(1, 11)]

PROBABILITY = bentoml.metrics.Histogram(
    name="tabrepro_predicted_probability",
    documentation="Predicted probability of the positive class, per record answered",
    buckets=_SCORES,
)
REJECTED = bentoml.metrics.Counter(
    name="tabrepro_rejected_requests",
    documentation="Requests refused by the data contract, by the reason of their first problem",
    labelnames=["reason"],
)
MODEL_REQUESTS = bentoml.metrics.Counter(
    name="tabrepro_model_requests",
    documentation="Requests in which the model scored at least one record",
    labelnames=_MODEL,
)
MODEL_RECORDS = bentoml.metrics.Counter(
    name="tabrepro_model_records", documentation="Records scored by the model", labelnames=_MODEL
)
MODEL_ERRORS = bentoml.metrics.Counter(
    name="tabrepro_model_errors", documentation="Scoring calls that failed", labelnames=_MODEL
)
MODEL_LATENCY = bentoml.metrics.Histogram(
    name="tabrepro_model_latency_seconds",
    documentation="Time of one scoring call of the model (all its records of a request)",
    labelnames=_MODEL,
    buckets=[5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 0.1, 0.5, 2.5],
)
MODEL_SCORE = bentoml.metrics.Histogram(
    name="tabrepro_model_score",
    documentation="Probability of the positive class given by the model, per record scored (served or not)",
    labelnames=_MODEL,
    buckets=_SCORES,
)
FALLBACK_RECORDS = bentoml.metrics.Counter(
    name="tabrepro_fallback_records",
    documentation="Records answered by the fallback because the served model's graph failed on them, by the role "
    "of the model that failed and the fallback's version",
    labelnames=["failed_role", "model_version"],
)
UNKNOWN_PATHS = bentoml.metrics.Counter(
    name="tabrepro_unknown_path_requests",
    documentation="Requests for a path the service does not serve (one series for all, whatever the path)",
)
LOG_DROPPED = bentoml.metrics.Counter(
    name="tabrepro_prediction_log_dropped",
    documentation="Prediction-log lines never written, by reason (queue_full, write_error, closed)",
    labelnames=["reason"],
)
GRAPH_NODES = bentoml.metrics.Gauge(
    name="tabrepro_graph_nodes",
    documentation="Nodes of the served ONNX graph per execution provider that runs them (read at start from a "
    "profiling run: onnxrt.placement)",
    labelnames=[*_MODEL, "graph", "provider"],
    multiprocess_mode="max",  # every worker places the same graph the same way
)


def observe_placement(role: str, model: Any) -> None:
    """Publish ``model.placement`` (an ``onnxrt.placement.Placement``) as ``tabrepro_graph_nodes``."""
    for provider, count in model.placement.nodes.items():
        labels = {"role": role, "model_version": model.version, "graph": model.graph_file, "provider": provider}
        GRAPH_NODES.labels(**labels).set(count)


def observe_scoring(role: str, model_version: str, seconds: float, records: int, task: str, scores: np.ndarray) -> None:
    """One model call: its records and latency, and (classification) the probabilities its answers stand on."""
    MODEL_REQUESTS.labels(role=role, model_version=model_version).inc()
    MODEL_RECORDS.labels(role=role, model_version=model_version).inc(records)
    MODEL_LATENCY.labels(role=role, model_version=model_version).observe(seconds)
    observe_many(MODEL_SCORE.labels(role=role, model_version=model_version), one_per_row(scores, task=task))


def observe_served(scores: np.ndarray, *, task: str = "binary") -> None:
    """The served answers' probabilities (binary P(positive), multiclass the top label's; regression none)."""
    observe_many(PROBABILITY, one_per_row(scores, task=task))


_FEW = 8


def observe_many(histogram: Any, values: np.ndarray) -> None:
    """``histogram.observe(v)`` for every value, with one increment per bucket instead of one per value.

    In BentoML's multiprocess mode each ``observe`` costs about 3 µs (a lock and an mmap write per bucket hit): 30 ms
    for one request of 10,000 records, per histogram. This uses prometheus_client's Histogram internals
    (``_upper_bounds``, ``_buckets``, ``_sum``; the version is pinned in requirements.txt); a test checks it against
    ``observe``, one value at a time.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size <= _FEW:  # the public observe is cheaper for a handful of values (one-record requests)
        for value in values.tolist():
            histogram.observe(value)
        return
    bounds = histogram._upper_bounds  # ascending, the last one +Inf; a value goes to the first bound >= it
    index = np.searchsorted(bounds, values, side="left")
    counts = np.bincount(index[index < len(bounds)], minlength=len(bounds))  # NaN fits no bucket, as in observe
    for bucket, count in enumerate(counts.tolist()):
        if count:
            histogram._buckets[bucket].inc(count)
    histogram._sum.inc(float(values.sum()))
