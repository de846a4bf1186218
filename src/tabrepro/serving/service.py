"""The BentoML service: POST /predict with {"records": [...]}, validated by the data contract, scored by ONNX.

Configuration comes from the environment (set by the bento, or by `make serve`):
``TABREPRO_SERVING_DIR`` (default ``models/serving``) and ``TABREPRO_PROVIDERS`` (comma-separated ONNX Runtime
execution providers, default from the packaged manifest). A missing or altered model keeps the service
un-ready (``/readyz`` 503) and every prediction answers 503 with the reason.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from typing import Any

import bentoml
from bentoml.exceptions import InvalidArgument, ServiceUnavailable

from tabrepro.serving.runtime import ServingError, ServingModel, validate_records

log = logging.getLogger("tabrepro.serving")

PROBABILITY = bentoml.metrics.Histogram(
    name="tabrepro_predicted_probability",
    documentation="Predicted probability of the positive class, per record",
    buckets=[i / 10 for i in range(1, 11)],
)
REJECTED = bentoml.metrics.Counter(
    name="tabrepro_rejected_requests",
    documentation="Requests refused by the data contract, by the reason of their first problem",
    labelnames=["reason"],
)
MAX_RECORDS = 100_000


def _providers_from_env() -> list[str] | None:
    """``TABREPRO_PROVIDERS`` overrides the packaged providers; unset means "as packaged"."""
    configured = os.environ.get("TABREPRO_PROVIDERS", "")
    return [p.strip() for p in configured.split(",") if p.strip()] or None


@bentoml.service(name="tabrepro", traffic={"timeout": 60})
class TabreproService:
    """Churn-style binary classifier served from the packaged, sha256-verified ONNX graph."""

    def __init__(self) -> None:
        directory = os.environ.get("TABREPRO_SERVING_DIR", "models/serving")
        self.model: ServingModel | None = None
        self.problem = ""
        try:
            self.model = ServingModel(directory, providers=_providers_from_env())
        except (ServingError, OSError, ValueError) as exc:
            self.problem = str(exc)
            log.error("not ready: %s", exc)

    def __is_ready__(self) -> bool:
        return self.model is not None

    @bentoml.api(route="/predict")
    def predict(self, records: list[Any]) -> dict[str, Any]:
        """Probability and label (at the threshold chosen on val) for each record."""
        if self.model is None:
            raise ServiceUnavailable(f"model not loaded: {self.problem}")
        if not records or len(records) > MAX_RECORDS:
            REJECTED.labels(reason="batch_size").inc()
            raise InvalidArgument(f"records: expected 1 to {MAX_RECORDS} records, got {len(records)}")
        parsed, errors = validate_records(records, self.model.record_model)
        if errors:
            REJECTED.labels(reason=Counter(e.reason for e in errors).most_common(1)[0][0]).inc()
            shown = "; ".join(str(e) for e in errors[:20])
            more = f"; and {len(errors) - 20} more" if len(errors) > 20 else ""
            raise InvalidArgument(f"{len(errors)} problem(s) in the request: {shown}{more}")
        probabilities = self.model.predict_proba(parsed)
        id_column = self.model.contract.id_column
        predictions = []
        for record, p in zip(parsed, probabilities, strict=True):
            PROBABILITY.observe(float(p))
            predictions.append(
                {"id": record.get(id_column), "probability": float(p), "label": int(p >= self.model.threshold)}
            )
        return {
            "model_version": self.model.version,
            "model_sha256": self.model.sha256,
            "threshold": self.model.threshold,
            "predictions": predictions,
        }
