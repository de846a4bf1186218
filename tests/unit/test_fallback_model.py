"""The fallback's declaration, its contract check, the degraded window and the /readyz rewrite (no server)."""

from __future__ import annotations

import asyncio
import json

import pytest

from tabrepro.artefacts import ServeParams
from tabrepro.errors import ConfigError, parse_section
from tabrepro.serving.fallback import Degradation, DegradedReadiness
from tabrepro.serving.rollout import check_candidate, resolve_serve_settings


def test_the_fallback_is_declared_in_serve_and_overridden_by_the_environment():
    packaged = ServeParams.model_validate({"fallback": {"serving_dir": "models/previous", "degraded_seconds": 60}})
    assert resolve_serve_settings(packaged, {}).fallback.serving_dir == "models/previous"
    assert resolve_serve_settings(packaged, {"TABREPRO_FALLBACK_DIR": " /srv/prev "}).fallback.serving_dir == (
        "/srv/prev"
    )
    assert resolve_serve_settings(packaged, {"TABREPRO_FALLBACK_DIR": "OFF"}).fallback.serving_dir is None
    assert resolve_serve_settings(ServeParams(), {}).fallback.serving_dir is None
    with pytest.raises(ConfigError, match=r"serve\.fallback\.degraded_seconds"):
        parse_section(ServeParams, {"fallback": {"degraded_seconds": -1}}, where="serve")


def test_a_fallback_with_another_contract_is_named_as_the_fallback():
    first = {"target": {"column": "y"}, "features": {"age": {"type": "numeric"}}}
    second = {"target": {"column": "y"}, "features": {"age": {"type": "categorical"}}}
    with pytest.raises(ConfigError, match=r"fallback's data contract .*features\.age\.type: primary 'numeric' vs "):
        check_candidate(first, second, role="fallback")


def test_degraded_only_within_the_window_after_the_last_fallback():
    now = [100.0]
    state = Degradation(window_seconds=30, clock=lambda: now[0])
    assert state.reason() is None
    state.note("the primary model v1 failed on 2 record(s)", records=2)
    now[0] += 10
    state.note("the primary model v1 failed on 1 record(s)", records=1)
    now[0] += 30
    assert state.reason() == "the primary model v1 failed on 1 record(s) (3 record(s) since start; the last 30 s ago)"
    now[0] += 0.5
    assert state.reason() is None


def _readyz(reason: str | None, status: int) -> tuple[int, bytes]:
    """One GET /readyz through ``DegradedReadiness`` over an app that answers ``status``."""

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"\n", "more_body": False})

    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    state = Degradation(window_seconds=60)
    if reason is not None:
        state.note(reason, records=1)
    middleware = DegradedReadiness(app, state=state)
    asyncio.run(middleware({"type": "http", "path": "/readyz", "method": "GET"}, None, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def test_readyz_says_degraded_with_200_and_passes_everything_else():
    status, body = _readyz("the primary model v1 failed on 1 record(s)", 200)
    assert status == 200
    assert json.loads(body)["status"] == "degraded" and "primary model v1" in json.loads(body)["reason"]
    assert _readyz(None, 200) == (200, b"\n")
    assert _readyz("x", 503) == (503, b"\n")  # not ready is not ready, degraded or not
