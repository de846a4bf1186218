"""Safe rollout, pure parts: the sticky canary hash, the serve settings with their run-time overrides, and the
check that a candidate takes exactly the primary's records."""

from __future__ import annotations

import numpy as np
import pytest

from tabrepro.artefacts import ServeParams
from tabrepro.errors import ConfigError, parse_section
from tabrepro.serving.rollout import (
    canary_bucket,
    check_candidate,
    contract_differences,
    resolve_serve_settings,
    split_canary,
    to_candidate,
)

IDS = [f"{i:04d}-CUST" for i in range(10_000)]


def test_bucket_is_deterministic_and_known():
    # fixed by sha256 alone: a customer keeps its model across processes, restarts and machines
    assert [canary_bucket(i) for i in ("a", "b", "7590-VHVEG")] == [2250, 7946, 380]
    assert all(0 <= canary_bucket(i) < 10_000 for i in IDS[:500])


@pytest.mark.parametrize("percent", [1, 10, 30, 50, 90])
def test_canary_share_is_close_to_the_percentage(percent):
    share = sum(to_candidate(i, percent) for i in IDS) / len(IDS)
    assert abs(share - percent / 100) <= 0.02


def test_zero_and_hundred_percent_are_exact():
    assert split_canary(IDS, 0) == (list(range(len(IDS))), [])
    assert split_canary(IDS, 100) == ([], list(range(len(IDS))))


def test_raising_the_percentage_only_moves_ids_to_the_candidate():
    at_10 = {i for i in IDS if to_candidate(i, 10)}
    at_30 = {i for i in IDS if to_candidate(i, 30)}
    assert at_10 < at_30


def test_records_without_an_id_stay_on_the_primary():
    assert split_canary([None, "", "x"], 100) == ([0, 1], [2])


def _serve(section: dict) -> ServeParams:
    """The packaged ``serve`` section as the manifest holds it: validated, naming a bad key."""
    return parse_section(ServeParams, section, where="serve")


def test_settings_default_when_the_manifest_has_no_serve_section():
    assert resolve_serve_settings(ServeParams(), {}) == ServeParams()
    assert resolve_serve_settings(_serve({"providers": ["CPUExecutionProvider"]}), {}).rollout.mode == "off"


def test_environment_overrides_the_packaged_settings():
    packaged = _serve({"rollout": {"mode": "shadow", "candidate_dir": "packaged/candidate"}})
    env = {
        "TABREPRO_ROLLOUT_MODE": " Canary ",
        "TABREPRO_CANARY_PERCENT": "12.5%",
        "TABREPRO_CANDIDATE_DIR": "/srv/candidate",
        "TABREPRO_PREDICTION_LOG": "/var/log/p.jsonl",
    }
    settings = resolve_serve_settings(packaged, env)
    assert settings.rollout.model_dump() == {
        "mode": "canary",
        "candidate_dir": "/srv/candidate",
        "canary_percent": 12.5,
    }
    assert settings.prediction_log.enabled and settings.prediction_log.path == "/var/log/p.jsonl"
    packaged_log = _serve({"prediction_log": {"enabled": True, "max_bytes": 4096}, "workers": 3})
    assert not resolve_serve_settings(packaged_log, {"TABREPRO_PREDICTION_LOG": "OFF"}).prediction_log.enabled
    moved = resolve_serve_settings(packaged_log, {"TABREPRO_PREDICTION_LOG": "/srv/p.jsonl"})
    assert moved.prediction_log.path == "/srv/p.jsonl" and moved.prediction_log.max_bytes == 4096  # the rest kept
    assert moved.workers == 3 and moved.rollout == packaged_log.rollout


@pytest.mark.parametrize(
    ("section", "env", "message"),
    [
        ({}, {"TABREPRO_CANARY_PERCENT": "150"}, "TABREPRO_CANARY_PERCENT: expected a percentage from 0 to 100"),
        ({}, {"TABREPRO_CANARY_PERCENT": "-1"}, "TABREPRO_CANARY_PERCENT"),
        ({}, {"TABREPRO_CANARY_PERCENT": "nan"}, "TABREPRO_CANARY_PERCENT"),
        ({}, {"TABREPRO_CANARY_PERCENT": "a third"}, "got 'a third'"),
        ({}, {"TABREPRO_ROLLOUT_MODE": "blue-green"}, "TABREPRO_ROLLOUT_MODE: expected one of off, shadow, canary"),
        ({"rollout": {"canary_percent": 150}}, {}, "serve.rollout.canary_percent: Input should be less than"),
        ({"rollout": {"mode": "canary"}}, {}, "'canary' but there is no candidate"),
        ({}, {"TABREPRO_ROLLOUT_MODE": "shadow"}, "set serve.rollout.candidate_dir or TABREPRO_CANDIDATE_DIR"),
        ({"rollout": {"mod": "shadow"}}, {}, "serve.rollout.mod: unknown key"),
        ({"prediction_log": {"max_bytes": 10}}, {}, "serve.prediction_log.max_bytes"),
    ],
)
def test_bad_settings_are_refused_naming_the_key(section, env, message):
    with pytest.raises(ConfigError) as refused:
        resolve_serve_settings(_serve(section), env)
    assert message in str(refused.value)


def test_mode_off_needs_no_candidate():
    assert resolve_serve_settings(ServeParams(), {"TABREPRO_CANARY_PERCENT": "40"}).rollout.candidate_dir is None


def _contract(**features: dict) -> dict:
    contract = {
        "name": "tiny",
        "source": "raw.csv",
        "id_column": "id",
        "target": {"column": "y", "positive": "yes"},
        "features": {"plan": {"type": "categorical", "values": ["basic", "pro"]}, "age": {"type": "numeric"}},
    }
    contract["features"] |= features
    return contract


def test_candidate_with_the_same_contract_is_accepted():
    moved = _contract()
    moved["source"] = "elsewhere/raw.parquet"  # where it was read from does not change a record
    check_candidate(_contract(), moved)


def test_candidate_with_another_contract_is_refused_naming_the_difference():
    changed = _contract(plan={"type": "categorical", "values": ["basic", "pro", "max"]})
    with pytest.raises(ConfigError, match=r"contract\.features\.plan\.values: primary \['basic', 'pro'\] vs"):
        check_candidate(_contract(), changed)
    with pytest.raises(ConfigError, match=r"contract\.features\.spend: only in the candidate"):
        check_candidate(_contract(), _contract(spend={"type": "numeric"}))


def test_contract_differences_lists_every_place():
    found = contract_differences({"a": 1, "b": {"c": 2}, "d": 0}, {"a": 1, "b": {"c": 3}, "e": 0})
    assert found == [
        "contract.b.c: primary 2 vs candidate 3",
        "contract.d: only in the primary",
        "contract.e: only in the candidate",
    ]


def test_bulk_observation_equals_observing_one_value_at_a_time():
    """The per-model score histograms take a request's scores in one pass; what /metrics shows is the same."""
    from prometheus_client import CollectorRegistry, Histogram

    from tabrepro.serving.telemetry import observe_many

    registry = CollectorRegistry()
    bounds = [i / 10 for i in range(1, 11)]
    one, bulk = (Histogram(name, "scores", ["role"], buckets=bounds, registry=registry) for name in ("one", "bulk"))
    values = np.concatenate([np.random.default_rng(0).random(500), bounds, [0.0, 1.0, 1.5, np.nextafter(0.3, 1)]])
    for v in values:
        one.labels(role="primary").observe(v)
    observe_many(bulk.labels(role="primary"), values[:100])
    observe_many(bulk.labels(role="primary"), values[100:])
    observe_many(bulk.labels(role="primary"), np.array([]))

    def samples(name: str) -> dict[tuple[str, str], float]:
        return {
            (s.name.removeprefix(name), s.labels.get("le", "")): s.value
            for m in registry.collect()
            if m.name == name
            for s in m.samples
            if not s.name.endswith("_created")
        }

    got, expected = samples("bulk"), samples("one")
    assert got.pop(("_sum", "")) == pytest.approx(expected.pop(("_sum", "")))
    assert got == expected
    assert got[("_count", "")] == len(values) and got[("_bucket", "0.3")] < got[("_bucket", "0.4")]
