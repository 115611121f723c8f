"""Broker detection on the session's real broker: ``broker_flavor=auto`` finds Tansu by its cluster id
and Apache Kafka by the lack of it, so each gets its own client tuning (``streams.settings.librdkafka``)."""

from __future__ import annotations

import os

import pytest

from streams.settings.librdkafka import (
    KAFKA_DEFAULTS,
    TANSU_CLIENT_OVERRIDES,
    broker_is_tansu,
    consumer_config,
)
from streams.settings.model import load_settings
from tests.stack_fixtures import ENV_BOOTSTRAP, local_broker_choice

pytestmark = pytest.mark.integration


def test_auto_flavor_matches_the_broker_the_session_started(kafka_bootstrap: str) -> None:
    if os.environ.get(ENV_BOOTSTRAP):
        pytest.skip("the broker was given by the environment: its kind is not known here")
    kind = local_broker_choice().kind
    settings = load_settings(bootstrap_servers=kafka_bootstrap)
    assert broker_is_tansu(settings) is (kind == "tansu")
    config = consumer_config(settings, "g")
    expected = TANSU_CLIENT_OVERRIDES if kind == "tansu" else KAFKA_DEFAULTS
    assert {k: config[k] for k in expected} == expected
