"""The BentoML service: POST /predict with {"records": [...]}, validated by the data contract, scored by ONNX.

Configuration comes from the environment (set by the bento, or by `make serve`): ``TABREPRO_SERVING_DIR``
(default ``models/serving``), ``TABREPRO_PROVIDERS`` (comma-separated ONNX Runtime execution providers, default
from the packaged manifest), and the overrides of the packaged ``serve`` section read by
``rollout.resolve_serve_settings`` (``TABREPRO_ROLLOUT_MODE``, ``TABREPRO_CANDIDATE_DIR``,
``TABREPRO_CANARY_PERCENT``, ``TABREPRO_PREDICTION_LOG``, ``TABREPRO_FALLBACK_DIR``: see ``fallback``). Anything
wrong at start-up (a missing or altered model, a bad rollout setting, a candidate or fallback that does not fit the
primary, an unwritable prediction log, a file that is not what it should be) keeps the worker up and the service
un-ready: ``/readyz`` answers 503 with the reason, which names files by their name in the serving folder (never the
server's absolute paths), and so does every prediction.

Importing it (``tabrepro.serving``) switches telemetry off before BentoML or ONNX Runtime act on it (``quiet``),
however the service is started. ``serve.workers`` (or ``TABREPRO_WORKERS``, see ``declaration``) sets the number of
worker processes; ``serve.limits`` what one request may carry (see ``guard``).
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import bentoml
from bentoml.exceptions import BentoMLException, InvalidArgument, ServiceUnavailable
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from tabrepro.artefacts import PredictionLogParams
from tabrepro.contract.records import record_json_schema
from tabrepro.serving import errors, guard, openapi, refusal_log, telemetry
from tabrepro.serving.declaration import check_workers, configured_workers, declare, serving_dir
from tabrepro.serving.fallback import DEGRADATION, DegradedReadiness, ScoringFailed, answer_instead, load_fallback
from tabrepro.serving.predlog import LoggedRequest, ModelAnswers, PredictionLog, record_ids
from tabrepro.serving.rollout import check_candidate, resolve_serve_settings, split_canary
from tabrepro.serving.runtime import ServingError, ServingModel, validate_records

log = logging.getLogger("tabrepro.serving")

_ABSOLUTE_PATH = re.compile(r"(?<![\w.~])/(?:[^/\s'\"`,;:()\[\]{}]+/)*([^/\s'\"`,;:()\[\]{}]+)")


class TooLarge(BentoMLException):
    """More records than ``serve.limits.max_records``: 413, like a body over the byte limit."""

    error_code = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


def public_reason(text: str) -> str:
    """``text`` with every absolute path cut to its last part (a file's name in its folder): what ``/readyz``
    may tell any client. The server's log keeps the full text."""
    return _ABSOLUTE_PATH.sub(lambda m: m.group(1), text)


def _providers_from_env(env: Mapping[str, str]) -> list[str] | None:
    """``TABREPRO_PROVIDERS`` overrides the packaged providers; unset means "as packaged"."""
    configured = env.get("TABREPRO_PROVIDERS", "")
    return [p.strip() for p in configured.split(",") if p.strip()] or None


def load_candidate(directory: str, primary: ServingModel, *, providers: list[str] | None) -> ServingModel:
    """The rollout candidate, verified like the primary and refused unless it takes exactly the same records."""
    try:
        candidate = ServingModel(directory, providers=providers)
    except ServingError as exc:
        raise ServingError(f"rollout candidate {directory}: {exc}") from None
    check_candidate(primary.packaged.contract, candidate.packaged.contract)
    if candidate.sha256 == primary.sha256:
        log.warning("the rollout candidate is the primary model itself (%s)", primary.version)
    return candidate


def unavailable(message: str) -> Any:
    """A 503 ``{"error": message}``: BentoML sends a starlette Response an API returns as it is (a 5xx it raises
    itself would say only "An unexpected error has occurred")."""
    return JSONResponse({"error": message}, status_code=HTTPStatus.SERVICE_UNAVAILABLE)


def open_prediction_log(settings: PredictionLogParams) -> PredictionLog:
    """The log, open and its writer running; a path it cannot write is a ServingError that names it."""

    def count_drop(reason: str, lines: int) -> None:
        telemetry.LOG_DROPPED.labels(reason=reason).inc(lines)

    try:
        prediction_log = PredictionLog(
            settings.path,
            max_bytes=settings.max_bytes,
            backups=settings.backups,
            queue_size=settings.queue_size,
            on_drop=count_drop,
        )
    except OSError as exc:
        raise ServingError(f"prediction log {settings.path}: cannot write there ({exc})") from None
    return prediction_log.start()


def show_start_up_log() -> None:
    """Let this package's INFO lines through: BentoML's server logging keeps the root logger at WARNING, so which
    provider runs which graph, and the node placement, never reached the log (only ``Service tabrepro
    initialized``). Only where nothing configured the ``tabrepro`` logger already."""
    package = logging.getLogger("tabrepro")
    if package.level == logging.NOTSET:
        package.setLevel(logging.INFO)


DECLARED = declare(os.environ)


@bentoml.service(name="tabrepro", traffic={"timeout": 60}, workers=configured_workers(os.environ, DECLARED.manifest))
class TabreproService:
    """The packaged model (binary, multiclass or regression) served from its sha256-verified ONNX graph, with an
    optional shadow or canary candidate, an optional fallback model and an optional prediction log."""

    def __init__(self) -> None:
        self.model: ServingModel | None = None
        self.candidate: ServingModel | None = None
        self.fallback: ServingModel | None = None
        self.prediction_log: PredictionLog | None = None
        self.mode, self.canary_percent, self.problem = "off", 0.0, ""
        self.max_records = guard.SETTINGS.limits.max_records
        show_start_up_log()
        refusal_log.install_client_error_log()
        guard.bound_http_metrics()
        try:
            self._start(os.environ)
        except Exception as exc:  # any fault at start-up: the worker stays up, un-ready, and says why
            known = isinstance(exc, ServingError | OSError | ValueError)  # ConfigError is a ValueError
            self.model, self.candidate, self.fallback = None, None, None
            self.problem = public_reason(str(exc) if known else f"{type(exc).__name__}: {exc}")
            self.close_prediction_log()
            log.error("not ready: %s", exc, exc_info=not known)

    def _start(self, env: Mapping[str, str]) -> None:
        check_workers(env)
        providers = _providers_from_env(env)
        directory = serving_dir(env)
        manifest = DECLARED.manifest_of(directory) or ServingModel.read_manifest(directory)
        limits = manifest.serve.limits  # the environment overrides no limit
        self.model = ServingModel(
            directory, providers=providers, manifest=manifest, max_text_chars=limits.max_text_chars
        )
        telemetry.observe_placement("primary", self.model)
        log.info("primary %s: %s", self.model.graph_file, self.model.placement.describe())
        settings = resolve_serve_settings(manifest.serve, env)
        self.max_records = limits.max_records
        guard.configure(limits, record_json_schema(self.model.contract, max_text_chars=limits.max_text_chars))
        openapi.configure_response(self.model.task, self.model.classes, self.model.contract.target.unit)
        self.mode, self.canary_percent = settings.rollout.mode, settings.rollout.canary_percent
        if self.mode != "off":
            self.candidate = load_candidate(str(settings.rollout.candidate_dir), self.model, providers=providers)
            telemetry.observe_placement("candidate", self.candidate)
            log.info("candidate %s: %s", self.candidate.graph_file, self.candidate.placement.describe())
            log.info(
                "rollout %s: primary %s, candidate %s%s",
                self.mode,
                self.model.version,
                self.candidate.version,
                f", {self.canary_percent:g} % of ids to the candidate" if self.mode == "canary" else "",
            )
        if settings.fallback.serving_dir:
            self.fallback = load_fallback(settings.fallback.serving_dir, self.model, providers=providers)
            DEGRADATION.window_seconds = settings.fallback.degraded_seconds
            telemetry.observe_placement("fallback", self.fallback)
            log.info(
                "fallback %s %s: %s",
                self.fallback.version,
                self.fallback.graph_file,
                self.fallback.placement.describe(),
            )
        if settings.prediction_log.enabled:
            self.prediction_log = open_prediction_log(settings.prediction_log)
            log.info("prediction log: %s", self.prediction_log.path.resolve())

    def __is_ready__(self) -> bool:
        if self.model is None:  # BentoML's own 503 says only "not ready"; this one says why
            raise HTTPException(status_code=503, detail=f"not ready: {self.problem}")
        return True

    @bentoml.on_shutdown  # type: ignore[untyped-decorator]  # a lazy export of bentoml's: Any to mypy
    def close_prediction_log(self) -> None:
        """Write what is still queued and close the log (BentoML calls this on shutdown)."""
        if self.prediction_log is not None:
            self.prediction_log.close()

    @bentoml.api(route="/predict", input_spec=guard.PredictRequest)  # type: ignore[untyped-decorator]  # as above
    def predict(self, records: list[Any]) -> dict[str, Any]:
        """Each record's answer (``serving.answers``): binary probability and label (at the answering model's
        threshold chosen on val); multiclass label and probabilities by class; regression prediction. A 503 in the
        one error shape when no model could score them (``fallback.ScoringFailed``)."""
        model = self.model
        if model is None:
            raise ServiceUnavailable(f"model not loaded: {self.problem}")
        if len(records) > self.max_records:
            telemetry.REJECTED.labels(reason="batch_size").inc()
            raise TooLarge(f"records: at most {self.max_records:,} records in one request, got {len(records):,}")
        if not records:
            telemetry.REJECTED.labels(reason="batch_size").inc()
            raise InvalidArgument(f"records: expected 1 to {self.max_records} records, got 0")
        parsed, errors = validate_records(records, model.record_model)
        if errors:
            telemetry.REJECTED.labels(reason=Counter(e.reason for e in errors).most_common(1)[0][0]).inc()
            shown = "; ".join(str(e) for e in errors[:20])
            more = f"; and {len(errors) - 20} more" if len(errors) > 20 else ""
            raise InvalidArgument(f"{len(errors)} problem(s) in the request: {shown}{more}")
        request_id, received, id_column = uuid.uuid4().hex, datetime.now(UTC), model.contract.id_column
        try:
            answers = self._score(model, parsed)
        except ScoringFailed as exc:
            message = f"{exc} (request {request_id}: the server's log has the errors)"
            # a starlette Response, which BentoML sends as it is; the annotation is the API's output schema
            return unavailable(message)  # type: ignore[no-any-return]
        if self.prediction_log is not None:
            self.prediction_log.submit(LoggedRequest(received, request_id, id_column, parsed, answers))
        fell_back = next((a for a in answers if a.role == "fallback"), None)  # then the top level names it
        if fell_back is None:
            version, sha256, threshold = model.version, model.sha256, model.threshold
        else:
            version, sha256, threshold = fell_back.model_version, fell_back.model_sha256, fell_back.threshold
        return {
            "model_version": version,
            "model_sha256": sha256,
            **({"threshold": threshold} if model.task == "binary" else {"task": model.task}),
            "answered_by": "primary" if fell_back is None else "fallback",
            "request_id": request_id,
            "predictions": self._predictions(parsed, answers, id_column),
        }

    def _score(self, model: ServingModel, parsed: list[dict[str, Any]]) -> list[ModelAnswers]:
        """Each model's answers, each model called once: all records to the primary (and, in shadow, to the
        candidate too), or in canary the candidate's share of ids to the candidate and the rest to the primary."""
        everyone = range(len(parsed))
        candidate = self.candidate  # None unless a rollout is on
        plan: list[tuple[ServingModel, str, bool, Sequence[int]]] = [(model, "primary", True, everyone)]
        if candidate is not None and self.mode == "shadow":
            plan.append((candidate, "candidate", False, everyone))
        elif candidate is not None and self.mode == "canary":  # a record without an id (every record, if the
            ids = record_ids(parsed, model.contract.id_column)  # contract has none) stays on the primary
            primary, chosen = split_canary(ids, self.canary_percent)
            plan = [(model, "primary", True, primary), (candidate, "candidate", True, chosen)]
        scored = (self._run_model(m, role, served, indices, parsed) for m, role, served, indices in plan)
        return [answers for answers in scored if answers is not None]

    def _run_model(
        self, model: ServingModel, role: str, served: bool, indices: Sequence[int], parsed: list[dict[str, Any]]
    ) -> ModelAnswers | None:
        if not indices:
            return None
        subset = parsed if len(indices) == len(parsed) else [parsed[i] for i in indices]
        started = time.perf_counter()
        try:
            probabilities = model.scores(subset)
        except Exception:
            telemetry.MODEL_ERRORS.labels(role=role, model_version=model.version).inc()
            if served:
                log.exception("the %s model %s failed on %d record(s)", role, model.version, len(subset))
                return answer_instead(self.fallback, failed=(role, model.version), indices=indices, records=subset)
            # a shadow model must never cost a caller its answer; the failure is logged and counted instead
            log.exception("shadow candidate %s failed on %d records", model.version, len(subset))
            return None
        seconds = time.perf_counter() - started
        telemetry.observe_scoring(role, model.version, seconds, len(subset), model.task, probabilities)
        return ModelAnswers(
            model.version, model.sha256, role, served, model.threshold, indices, probabilities, model.task,
            model.classes,
        )  # fmt: skip

    @staticmethod
    def _predictions(
        parsed: list[dict[str, Any]], answers: list[ModelAnswers], id_column: str | None
    ) -> list[dict[str, Any]]:
        """One answer per record, in request order: its ``id`` (null when it has none, as every record of a
        contract without an id column) and its ``index`` in the request, which keys a record without an id."""
        ids = record_ids(parsed, id_column)
        predictions: list[dict[str, Any]] = [{}] * len(parsed)
        for served in (a for a in answers if a.served):
            telemetry.observe_served(served.probabilities, task=served.task)
            values = served.probabilities.tolist()
            for index, p in zip(served.indices, values, strict=True):
                predictions[index] = {
                    "id": ids[index],
                    "index": index,
                    **served.fields(p),  # binary probability and label; multiclass label and probabilities; ...
                    "model_version": served.model_version,
                    "role": served.role,
                }
        return predictions


for middleware in (guard.RequestGuard, openapi.DocumentFix, DegradedReadiness, errors.OneErrorShape):
    # bentoml.service made the class a bentoml Service; mypy keeps a decorated class's own type (and sees
    # bentoml's lazy exports as Any)
    TabreproService.add_asgi_middleware(middleware)  # type: ignore[attr-defined]
