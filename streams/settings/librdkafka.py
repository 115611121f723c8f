"""Settings mapped onto librdkafka configuration, in one place, including the local broker's quirks and
the security keys (``kafka_security_config``).

Every Kafka client kcollect creates gets its dict from here. ``TANSU_CLIENT_OVERRIDES`` is the one
place where the local Tansu broker's quirks are worked around (see ../shared/local-stack.md).
"""

from __future__ import annotations

import functools
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from pydantic import SecretStr

from streams.settings.model import Settings

# Tansu 0.6.0: the default fetch.queue.backoff.ms (1000) stalls consumes for about a second; the first
# group assignment waits session.timeout.ms / 2, so a short session keeps start-up fast; KIP-848
# (group.protocol=consumer) never assigns, so the classic protocol is pinned.
TANSU_CLIENT_OVERRIDES: dict[str, Any] = {
    "fetch.queue.backoff.ms": 20,
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 1000,
    "group.protocol": "classic",
}

KAFKA_DEFAULTS: dict[str, Any] = {
    "fetch.queue.backoff.ms": 50,
    "session.timeout.ms": 10000,
    "heartbeat.interval.ms": 2000,
}


def kafka_security_config(settings: Settings) -> dict[str, Any]:
    """The librdkafka security keys for the configured settings (empty when none is set)."""
    config: dict[str, Any] = {}
    pairs: tuple[tuple[str, Any], ...] = (
        ("security.protocol", settings.kafka_security_protocol),
        ("sasl.mechanism", settings.kafka_sasl_mechanism),
        ("sasl.username", settings.kafka_sasl_username),
        ("sasl.password", settings.kafka_sasl_password),
        ("ssl.ca.location", settings.kafka_ssl_ca_location),
        ("ssl.certificate.location", settings.kafka_ssl_certificate_location),
        ("ssl.key.location", settings.kafka_ssl_key_location),
        ("ssl.key.password", settings.kafka_ssl_key_password),
        ("ssl.endpoint.identification.algorithm", settings.kafka_ssl_endpoint_identification),
    )
    for key, value in pairs:
        if value is not None:
            config[key] = value.get_secret_value() if isinstance(value, SecretStr) else value
    return config


@functools.cache
def _cluster_is_tansu(client_config: tuple[tuple[str, Any], ...]) -> bool:
    admin = AdminClient(dict(client_config))
    try:
        cluster_id = admin.list_topics(timeout=5).cluster_id or ""
    except KafkaException:
        return False
    return cluster_id.startswith("tansu")


def broker_is_tansu(settings: Settings) -> bool:
    """Whether Tansu's quirks apply: the ``broker_flavor`` setting, or (auto) the broker's cluster id."""
    if settings.broker_flavor != "auto":
        return settings.broker_flavor == "tansu"
    return _cluster_is_tansu(tuple(sorted(_common(settings).items())))


def _common(settings: Settings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap(),
        "socket.connection.setup.timeout.ms": int(settings.broker_timeout_seconds * 1000),
    }
    config.update(kafka_security_config(settings))
    config.update(settings.kafka_config)
    return config


def _consumer_tuning(settings: Settings) -> dict[str, Any]:
    tuning = dict(TANSU_CLIENT_OVERRIDES if broker_is_tansu(settings) else KAFKA_DEFAULTS)
    if settings.session_timeout_ms is not None:
        tuning["session.timeout.ms"] = settings.session_timeout_ms
        tuning["heartbeat.interval.ms"] = max(100, settings.session_timeout_ms // 5)
    return tuning


def consumer_config(settings: Settings, group_id: str, **extra: Any) -> dict[str, Any]:
    """A consumer that commits explicitly, only what kcollect says is done."""
    config = _common(settings)
    config.update(_consumer_tuning(settings))
    config.update(
        {
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": False,
            "max.poll.interval.ms": 300000,
            "queued.max.messages.kbytes": 65536,
            "fetch.max.bytes": 52428800,
        }
    )
    config.update(extra)
    return config


def producer_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """An idempotent producer (acks=all, ordered retries) tuned for throughput."""
    config = _common(settings)
    config.update(
        {
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 20,
            "batch.num.messages": 10000,
            "batch.size": 1048576,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 500000,
            "queue.buffering.max.kbytes": 1048576,
            "message.timeout.ms": int(max(settings.broker_timeout_seconds, 1) * 1000),
        }
    )
    config.update(extra)
    return config


def admin_config(settings: Settings) -> dict[str, Any]:
    return _common(settings)
