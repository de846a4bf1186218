"""Safe rollout of a candidate model beside the primary: the settings, the sticky canary hash and the checks.

Pure functions only (no files, no BentoML): the service calls them with the packaged ``serve`` section, the
environment and the two packaged contracts. A customer's model depends on nothing but its id and the percentage: the
first 8 bytes of sha256(id) modulo 10,000 put it in one of 10,000 buckets, and the buckets below
``canary_percent x 100`` go to the candidate, so raising the percentage only ever moves customers to the candidate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, get_args

from tabrepro.artefacts import RolloutParams, ServeParams
from tabrepro.errors import ConfigError
from tabrepro.serving.startup import parse_number

BUCKETS = 10_000
ENV_MODE, ENV_CANDIDATE, ENV_PERCENT = "TABREPRO_ROLLOUT_MODE", "TABREPRO_CANDIDATE_DIR", "TABREPRO_CANARY_PERCENT"
ENV_PREDICTION_LOG, ENV_FALLBACK = "TABREPRO_PREDICTION_LOG", "TABREPRO_FALLBACK_DIR"
MODES = get_args(RolloutParams.model_fields["mode"].annotation)


def canary_bucket(record_id: str) -> int:
    """The id's bucket in [0, 10,000): stable across processes, machines and Python versions."""
    digest = hashlib.sha256(record_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def to_candidate(record_id: str | None, percent: float) -> bool:
    """Whether the canary sends this id to the candidate. A record without an id stays on the primary."""
    return _to_candidate(record_id, _cutoff(percent))


def split_canary(ids: Sequence[str | None], percent: float) -> tuple[list[int], list[int]]:
    """Indices of the records the primary answers and of those the candidate answers."""
    primary: list[int] = []
    candidate: list[int] = []
    cutoff = _cutoff(percent)
    for index, record_id in enumerate(ids):
        (candidate if _to_candidate(record_id, cutoff) else primary).append(index)
    return primary, candidate


def _cutoff(percent: float) -> int:
    return round(percent * BUCKETS / 100)


def _to_candidate(record_id: str | None, cutoff: int) -> bool:
    if not record_id:  # None or "": no id, the primary
        return False
    return canary_bucket(record_id) < cutoff


def resolve_serve_settings(packaged: ServeParams, env: Mapping[str, str]) -> ServeParams:
    """The ``serve`` section packaged in the primary's manifest with the run-time environment applied; a bad value
    or an incomplete rollout is a ConfigError that names it. Each override is checked by its own parser (a mode of
    ``MODES``, a percentage from 0 to 100, a path that is not empty), so the copies are as valid as the section."""
    settings = packaged.model_copy(
        update={
            "rollout": packaged.rollout.model_copy(update=_rollout_overrides(env)),
            "prediction_log": packaged.prediction_log.model_copy(update=_log_overrides(env)),
            "fallback": packaged.fallback.model_copy(update=_fallback_overrides(env)),
        }
    )
    if settings.rollout.mode != "off" and not settings.rollout.candidate_dir:
        raise ConfigError(
            f"serve.rollout.mode is {settings.rollout.mode!r} but there is no candidate: set "
            f"serve.rollout.candidate_dir or {ENV_CANDIDATE}"
        )
    return settings


def _rollout_overrides(env: Mapping[str, str]) -> dict[str, object]:
    changes: dict[str, object] = {}
    if env.get(ENV_MODE, "").strip():
        changes["mode"] = _parse_mode(env[ENV_MODE])
    if env.get(ENV_CANDIDATE, "").strip():
        changes["candidate_dir"] = env[ENV_CANDIDATE].strip()
    if env.get(ENV_PERCENT, "").strip():
        changes["canary_percent"] = _parse_percent(env[ENV_PERCENT])
    return changes


def _log_overrides(env: Mapping[str, str]) -> dict[str, object]:
    switch = env.get(ENV_PREDICTION_LOG, "").strip()
    if switch.lower() == "off":
        return {"enabled": False}
    return {"enabled": True, "path": switch} if switch else {}


def _fallback_overrides(env: Mapping[str, str]) -> dict[str, object]:
    declared = env.get(ENV_FALLBACK, "").strip()
    if not declared:
        return {}
    return {"serving_dir": None if declared.lower() == "off" else declared}


def _parse_mode(raw: str) -> str:
    mode = raw.strip().lower()
    if mode not in MODES:
        raise ConfigError(f"{ENV_MODE}: expected one of {', '.join(MODES)}, got {raw!r}")
    return mode


def _parse_percent(raw: str) -> float:
    return parse_number(raw, name=ENV_PERCENT, low=0, high=100, kind="a percentage")


def contract_differences(
    primary: Any, candidate: Any, *, where: str = "contract", other: str = "candidate"
) -> list[str]:
    """Every place where two JSON-like contracts differ, as ``key.path: primary ... vs candidate ...`` (``other``
    names the second model's role)."""
    if isinstance(primary, Mapping) and isinstance(candidate, Mapping):
        found = []
        for key in list(primary) + [k for k in candidate if k not in primary]:
            if key not in candidate:
                found.append(f"{where}.{key}: only in the primary")
            elif key not in primary:
                found.append(f"{where}.{key}: only in the {other}")
            else:
                found += contract_differences(primary[key], candidate[key], where=f"{where}.{key}", other=other)
        return found
    if primary != candidate:
        return [f"{where}: primary {_short(primary)} vs {other} {_short(candidate)}"]
    return []


def check_candidate(
    primary_contract: Mapping[str, Any], candidate_contract: Mapping[str, Any], *, role: str = "candidate"
) -> None:
    """Refuse a candidate (or the fallback: ``role``) that does not take exactly the primary's records: its data
    contract as packaged (``ServingManifest.contract``: features, target, task, id) differs."""
    # Where the raw table was read from and which segments evaluate reported do not change what a record is.
    ignored = {"source", "format", "description", "segments"}
    first = {k: v for k, v in primary_contract.items() if k not in ignored}
    second = {k: v for k, v in candidate_contract.items() if k not in ignored}
    found = contract_differences(first, second, other=role)
    if found:
        shown = "; ".join(found[:5]) + (f"; and {len(found) - 5} more" if len(found) > 5 else "")
        raise ConfigError(f"the {role}'s data contract differs from the primary's: {shown}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
