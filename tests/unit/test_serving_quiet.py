"""``serving.quiet``: the telemetry switches are set unless the environment says otherwise, and BentoML's cached
answer to "track?" is read again (its CLI asks before the service module is imported)."""

from __future__ import annotations

import os

import pytest

from tabrepro.serving.quiet import SWITCHES, switch_telemetry_off


def test_each_switch_is_set_unless_the_environment_says_otherwise():
    env = {"BENTOML_DO_NOT_TRACK": "False"}  # a user who opts in keeps it
    switch_telemetry_off(env)
    assert env == {**SWITCHES, "BENTOML_DO_NOT_TRACK": "False"}


def test_bentoml_asks_again_after_the_switch(monkeypatch: pytest.MonkeyPatch):
    from bentoml._internal.utils.analytics import usage_stats

    for name in SWITCHES:
        monkeypatch.delenv(name, raising=False)
    usage_stats.do_not_track.cache_clear()
    try:
        assert usage_stats.do_not_track() is False  # what BentoML's CLI cached before the service was imported
        switch_telemetry_off(os.environ)
        assert usage_stats.do_not_track() is True
    finally:
        usage_stats.do_not_track.cache_clear()
