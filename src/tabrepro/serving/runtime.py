"""The packaged model at run time: verified ONNX session, request validation and feeds built from records.

A serving folder (written by the ``package`` stage) holds ``model.onnx`` and ``manifest.json`` (its sha256, the
data contract, the decision threshold chosen on val, the model's version, sealed by a sha256 of all of them: see
``tabrepro.artefacts.ServingManifest``). Nothing here imports pandas or scikit-learn: records are validated by
the contract's record model (``tabrepro.contract.records``: the grammar prepare and batch scoring apply too) and
turned straight into ONNX feeds.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from tabrepro.artefacts import ServingManifest, sha256_bytes, validate_artefact
from tabrepro.contract.records import MAX_TEXT_CHARS, RecordError, RecordModel, build_record_model
from tabrepro.contract.spec import load_contract
from tabrepro.errors import TabreproError
from tabrepro.onnxrt.feeds import feeds_from_records as feeds_from_records  # serving's name for it too
from tabrepro.onnxrt.placement import MODEL_FILE as MODEL_FILE  # the packaged graph's name, with the others there
from tabrepro.onnxrt.placement import Placement, graph_for, node_placement
from tabrepro.onnxrt.session import create_session as create_session
from tabrepro.serving.startup import read_bounded_json

log = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.json"


class ServingError(TabreproError, RuntimeError):
    """The serving folder is missing, altered (sha256 mismatch) or inconsistent."""


def validate_records(records: Sequence[Any], model: RecordModel) -> tuple[list[dict[str, Any]], list[RecordError]]:
    """Validate every record of a request; the parsed ones and every problem (record index, field, the grammar's
    message). Any JSON value in any field is a problem at worst, never an exception; a repeated id is refused."""
    return model.parse_records(records)


class ServingModel:
    """A verified ONNX model with its contract and threshold, on the first usable execution provider."""

    def __init__(
        self,
        directory: str | Path,
        *,
        providers: Sequence[str] | None = None,
        manifest: ServingManifest | None = None,
        max_text_chars: int = MAX_TEXT_CHARS,
    ) -> None:
        """``providers`` overrides the execution providers packaged in the manifest (``serve.providers``);
        ``manifest`` is the folder's manifest when the caller has read it already (``read_manifest``);
        ``max_text_chars`` bounds a record's text values (the service's ``serve.limits.max_text_chars``).

        The manifest's seal and the model's sha256 are both checked: an edited file of either is a ServingError.
        The graph is the one the manifest gives the first requested provider (``placement.graph_for``); when that
        provider cannot start here, the one of the provider that runs instead. Where ONNX Runtime placed its nodes
        (``self.placement``) is read from a profiling run on first use only: the service publishes it, while
        `tabrepro score`, `drift` and every Dask worker need not pay for a second session and a profiled run.
        """
        self.directory = Path(directory)
        self.packaged = manifest if manifest is not None else self.read_manifest(self.directory)
        requested = list(providers or self.packaged.serve.providers)
        self.graph_file, self.graph_sha256 = graph_for(self.packaged, requested[0])
        data = self.graph_bytes()
        self.contract = load_contract(self.packaged.contract, where=f"{self.directory / MANIFEST_FILE}: contract")
        self.record_model = build_record_model(self.contract, max_text_chars=max_text_chars)
        self.threshold = self.packaged.threshold
        self.session = self._session(data, requested)
        self.provider = self.session.get_providers()[0]
        if graph_for(self.packaged, self.provider)[0] != self.graph_file:  # fell back: the fallback provider's graph
            self.graph_file, self.graph_sha256 = graph_for(self.packaged, self.provider)
            data = self.graph_bytes()
            self.session = self._session(data, [self.provider])
        log.info(
            "serving %s on %s: %s (sha256 %s)", self.version, self.provider, self.graph_file, self.graph_sha256[:12]
        )

    @cached_property
    def placement(self) -> Placement:
        """How many of the graph's nodes each provider runs, from one profiled run (computed once, when asked)."""
        return node_placement(self.graph_bytes(), self.session.get_providers())

    def graph_bytes(self) -> bytes:
        """The chosen graph's bytes, after checking them against the sha256 packaged in the manifest."""
        path = self.directory / self.graph_file
        if not path.is_file():
            raise ServingError(f"{path}: not found (run `dvc repro` to package the model)")
        data = path.read_bytes()
        if sha256_bytes(data) != self.graph_sha256:
            raise ServingError(
                f"{path}: sha256 {sha256_bytes(data)} does not match {self.graph_sha256} "
                f"packaged in {self.directory / MANIFEST_FILE}; refusing to serve an altered model"
            )
        return data

    def _session(self, data: bytes, providers: Sequence[str]) -> ort.InferenceSession:
        try:
            return create_session(data, providers)
        except Exception as exc:  # ONNX Runtime's own errors (invalid protobuf, bad graph) are not ours to type
            path = self.directory / self.graph_file
            raise ServingError(f"{path}: ONNX Runtime cannot load it as a model ({exc})") from None

    @staticmethod
    def read_manifest(directory: str | Path) -> ServingManifest:
        """The folder's manifest, its layout, schema version and seal verified; a ServingError naming the file
        and the key when it is missing, truncated, of another version or edited after packaging."""
        path, hint = Path(directory) / MANIFEST_FILE, "run `dvc repro` to package the model"
        data = read_bounded_json(path, error=ServingError, hint=hint)  # bounded in size and depth: never a crash
        return validate_artefact(data, ServingManifest, source=str(path), error=ServingError, hint=hint)

    @property
    def version(self) -> str:
        return self.packaged.version

    @property
    def sha256(self) -> str:
        return self.packaged.onnx_sha256

    @property
    def task(self) -> str:
        """``binary``, ``multiclass`` or ``regression``: the packaged contract's target."""
        return self.contract.target.task

    @property
    def classes(self) -> tuple[str, ...]:
        """Multiclass: the probability columns' names, in order; binary (negative, positive); regression ()."""
        return self.contract.target.labels

    def predict_proba(self, records: Sequence[dict[str, Any]]) -> np.ndarray:
        """Positive-class probabilities of already validated (parsed) records: a binary model's only; a ServingError
        for any other (``scores`` answers every task), never another class's column in its place."""
        if self.task != "binary":
            raise ServingError(
                f"{self.directory / MANIFEST_FILE}: a {self.task} model has no positive-class probability; "
                "this consumer supports binary models only (issue 21)"
            )
        outputs = self.session.run(["probabilities"], feeds_from_records(records, self.contract))
        return np.asarray(outputs[0][:, 1], dtype=np.float64)

    def scores(self, records: Sequence[dict[str, Any]]) -> np.ndarray:
        """What the model answers for validated records, per task: binary (n,) P(positive); multiclass (n, K)
        probabilities in class order; regression (n,) predictions. All float64."""
        if self.task == "binary":
            return self.predict_proba(records)
        output = "prediction" if self.task == "regression" else "probabilities"
        values = np.asarray(self.session.run([output], feeds_from_records(records, self.contract))[0], np.float64)
        return values[:, 0] if self.task == "regression" else values
