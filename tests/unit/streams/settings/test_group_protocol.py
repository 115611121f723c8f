"""KCOLLECT_GROUP_PROTOCOL: KIP-848's consumer protocol drops the keys librdkafka refuses with it (the
broker sets session, heartbeat and assignor), and is refused on Tansu, which never assigns with it."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer

from streams.settings.librdkafka import CLASSIC_ONLY, consumer_config
from streams.settings.model import load_settings
from streams.settings.names import SettingsError


def test_classic_is_the_default_and_keeps_the_client_side_session() -> None:
    settings = load_settings(bootstrap_servers="127.0.0.1:1", broker_flavor="kafka", session_timeout_ms=3000)
    config = consumer_config(settings, "g", **{"partition.assignment.strategy": "range"})
    assert "group.protocol" not in config
    assert config["session.timeout.ms"] == 3000 and config["partition.assignment.strategy"] == "range"


def test_consumer_protocol_leaves_session_and_assignor_to_the_broker() -> None:
    settings = load_settings(
        bootstrap_servers="127.0.0.1:1",
        broker_flavor="kafka",
        group_protocol="consumer",
        session_timeout_ms=3000,
    )
    config = consumer_config(
        settings, "g", group_member=True, instance_id="p-1", **{"partition.assignment.strategy": "range"}
    )
    assert config["group.protocol"] == "consumer" and config["group.instance.id"] == "p-1"
    assert not set(CLASSIC_ONLY) & set(config)
    Consumer(config).close()  # librdkafka accepts the configuration (it refuses any CLASSIC_ONLY key)


def test_consumer_protocol_is_refused_on_tansu() -> None:
    settings = load_settings(
        bootstrap_servers="127.0.0.1:1", broker_flavor="tansu", group_protocol="consumer"
    )
    with pytest.raises(SettingsError, match=r"KCOLLECT_GROUP_PROTOCOL=consumer.*Tansu.*classic"):
        consumer_config(settings, "g", group_member=True)
    assert consumer_config(settings, "reader").get("group.protocol", "classic") == "classic"  # readers assign
