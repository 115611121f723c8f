"""Settings mapped onto librdkafka configuration, in one place, including the local broker's quirks and
the security keys (``kafka_security_config``).

Every Kafka client kcollect creates gets its dict from here (``streams.kafka.clients`` adds the hooks
that route librdkafka's logs and errors through Python logging, each distinct message once).
``TANSU_CLIENT_OVERRIDES`` is the one place where the local Tansu broker's quirks are worked around
(see ../shared/local-stack.md).
"""

from __future__ import annotations

import functools
import logging
import os
import socket
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from pydantic import SecretStr

from streams.settings.model import Settings
from streams.settings.names import SettingsError

log = logging.getLogger(__name__)

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
    config: dict[str, Any] = dict(client_config)
    config["logger"] = log  # short-lived: its few lines go to Python logging, not to stderr
    admin = AdminClient(config)
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
        "client.id": settings.client_id or f"kcollect-{socket.gethostname()}-{os.getpid()}",
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
    """A consumer that commits explicitly, only what kcollect says is done.

    ``instance_id`` (in ``extra``): static membership (``group.instance.id``): a member restarted
    within its session timeout gets its partitions back without a rebalance.
    ``group_member=True`` (in ``extra``): a member of its group (a service's consumer, which subscribes):
    ``KCOLLECT_GROUP_PROTOCOL`` applies (``group_membership``). Readers that only assign partitions
    (lag, runs, checks) keep the classic protocol, which is all they need on every broker.
    """
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
            # partitions added by `kcollect topics grow` are consumed within 30 s (librdkafka: 5 min)
            "topic.metadata.refresh.interval.ms": 30000,
        }
    )
    instance_id = extra.pop("instance_id", None)
    member = bool(extra.pop("group_member", False))
    config.update(extra)
    if instance_id:
        config["group.instance.id"] = instance_id
    return group_membership(settings, config) if member or instance_id else config


CLASSIC_ONLY = ("session.timeout.ms", "heartbeat.interval.ms", "partition.assignment.strategy")
"""Keys librdkafka refuses with group.protocol=consumer: the broker (or the group's config) sets them."""


def group_membership(settings: Settings, config: dict[str, Any]) -> dict[str, Any]:
    """``config`` for the group protocol of ``KCOLLECT_GROUP_PROTOCOL``; broker-specific rules here.

    - ``consumer`` (KIP-848): the session and heartbeat come from the broker
      (``group.consumer.session.timeout.ms``) and the assignor is the broker's, so the classic keys are
      dropped. Tansu 0.6.0 never assigns partitions with it: refused (SettingsError, exit 2).
    - static membership on Tansu still rebalances a session timeout after a restart: a warning says so.
    """
    if settings.group_protocol == "consumer":
        if broker_is_tansu(settings):
            raise SettingsError(
                "KCOLLECT_GROUP_PROTOCOL=consumer (KIP-848): this broker (Tansu) never assigns partitions "
                "with it; use classic"
            )
        config = {k: v for k, v in config.items() if k not in CLASSIC_ONLY}
        config["group.protocol"] = "consumer"
    if config.get("group.instance.id") and broker_is_tansu(settings):
        log.warning(
            "static membership (group.instance.id %s) on Tansu: a restart still rebalances after the session "
            "timeout",
            config["group.instance.id"],
        )
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


def admin_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    config = _common(settings)
    config.update(extra)
    return config
