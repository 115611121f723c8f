"""Every Kafka client kcollect creates is built here, from the settings mapped onto librdkafka
(``streams.settings.librdkafka``): a consumer that commits only what kcollect says is done, an
idempotent producer, an admin client. ``extra`` adds or overrides librdkafka keys. Each gets a ``logger``
and an ``error_cb`` (``streams.kafka.client_logs``): librdkafka's lines go through Python logging, each
distinct message once, and never straight to stderr."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from streams.kafka.client_logs import with_logging
from streams.settings.librdkafka import admin_config, consumer_config, producer_config
from streams.settings.model import Settings


def make_consumer(settings: Settings, group_id: str, **extra: Any) -> Consumer:
    return Consumer(with_logging(consumer_config(settings, group_id, **extra)))


def make_producer(settings: Settings, **extra: Any) -> Producer:
    return Producer(with_logging(producer_config(settings, **extra)))


def make_admin(settings: Settings, **extra: Any) -> AdminClient:
    return AdminClient(with_logging(admin_config(settings, **extra)))
