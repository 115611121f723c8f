"""The per-broker client tuning in ``streams.settings.librdkafka`` with the flavor set (no broker asked)."""

from __future__ import annotations

from streams.settings.librdkafka import (
    KAFKA_DEFAULTS,
    TANSU_CLIENT_OVERRIDES,
    broker_is_tansu,
    consumer_config,
)
from streams.settings.model import load_settings


def test_tansu_gets_its_overrides_and_the_classic_protocol() -> None:
    settings = load_settings(bootstrap_servers="127.0.0.1:1", broker_flavor="tansu")
    assert broker_is_tansu(settings)
    config = consumer_config(settings, "g")
    for key, value in TANSU_CLIENT_OVERRIDES.items():
        assert config[key] == value
    assert config["group.protocol"] == "classic"


def test_kafka_gets_the_kafka_defaults() -> None:
    settings = load_settings(bootstrap_servers="127.0.0.1:1", broker_flavor="kafka")
    assert not broker_is_tansu(settings)
    config = consumer_config(settings, "g")
    for key, value in KAFKA_DEFAULTS.items():
        assert config[key] == value


def test_a_session_timeout_setting_wins_on_both() -> None:
    for flavor in ("kafka", "tansu"):
        settings = load_settings(
            bootstrap_servers="127.0.0.1:1", broker_flavor=flavor, session_timeout_ms=3000
        )
        config = consumer_config(settings, "g")
        assert config["session.timeout.ms"] == 3000
        assert config["heartbeat.interval.ms"] == 600
