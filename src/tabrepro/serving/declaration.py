"""What the service reads when its class is declared: the primary's manifest, once, and the worker count.

BentoML takes ``workers`` from the ``@bentoml.service`` decorator, before any worker exists, so the primary's
manifest is read (and verified, like any manifest) when the class is declared; each worker process declares the
class too and starts from the manifest read there (``Declared.manifest_of``), reading it again only for another
folder or when it could not be read, to say why: a missing or wrong manifest never stops the declaration, it makes
each worker un-ready with its reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tabrepro.artefacts import ServingManifest
from tabrepro.serving.runtime import ServingError, ServingModel
from tabrepro.serving.startup import parse_number

ENV_WORKERS = "TABREPRO_WORKERS"
MAX_WORKERS = 64


def serving_dir(env: Mapping[str, str]) -> Path:
    """The primary's serving folder: ``TABREPRO_SERVING_DIR``, else ``models/serving``."""
    return Path(env.get("TABREPRO_SERVING_DIR", "models/serving"))


@dataclass(frozen=True)
class Declared:
    """The primary's manifest as read when the class was declared, and the folder it was read from; ``manifest``
    is None when it could not be read there (each worker then reads it itself and is refused with its reason)."""

    directory: Path
    manifest: ServingManifest | None

    def manifest_of(self, directory: Path) -> ServingManifest | None:
        """The manifest already read, when ``directory`` is the one it was read from."""
        return self.manifest if directory == self.directory else None


def declare(env: Mapping[str, str]) -> Declared:
    """Read the primary's manifest once, when the class is declared: its ``serve.workers`` sets the worker count and
    each worker starts from it. A manifest that is missing or wrong here is refused, with its reason, by each
    worker."""
    directory = serving_dir(env)
    try:
        return Declared(directory, ServingModel.read_manifest(directory))
    except ServingError:
        return Declared(directory, None)


def configured_workers(env: Mapping[str, str], manifest: ServingManifest | None) -> int:
    """Worker processes: ``TABREPRO_WORKERS``, else ``serve.workers`` of ``manifest`` (the primary's, read when the
    class is declared: BentoML takes ``workers`` from the decorator, before any worker exists), else 1. A number
    that cannot be read here is refused, with its reason, by each worker (``check_workers``)."""
    raw = env.get(ENV_WORKERS, "").strip()
    if not raw:
        return manifest.serve.workers if manifest is not None else 1
    try:
        return int(parse_number(raw, name=ENV_WORKERS, low=1, high=MAX_WORKERS, integer=True))
    except ValueError:  # ConfigError is a ValueError
        return 1


def check_workers(env: Mapping[str, str]) -> None:
    """A ``TABREPRO_WORKERS`` that ``configured_workers`` could not read is a ConfigError (a 503 with its reason)."""
    if env.get(ENV_WORKERS, "").strip():
        parse_number(env[ENV_WORKERS], name=ENV_WORKERS, low=1, high=MAX_WORKERS, integer=True)
