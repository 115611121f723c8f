"""The largest record kcollect may produce to each topic, and a producer configuration that respects it.

Apache Kafka refuses a record batch larger than the topic's ``max.message.bytes`` (MSG_SIZE_TOO_LARGE
in the delivery report); librdkafka refuses at ``produce()`` a record larger than its own
``message.max.bytes``. Tansu enforces no limit at all (../shared/local-stack.md), so kcollect keeps its
own: ``KCOLLECT_MAX_MESSAGE_BYTES`` caps every topic, and the broker's ``max.message.bytes`` lowers it
where the broker reports one (``describe_configs``).

A record's value must leave room for its key, headers and the batch framing (``FRAMING_BYTES``);
``TopicLimits.value_limit`` says how many bytes of value fit. The producer's ``batch.size`` and
``message.max.bytes`` are set to the smallest limit, so librdkafka never packs records into a batch the
broker would refuse.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType  # type: ignore[attr-defined]

from streams.kafka.clients import make_admin
from streams.settings.model import Settings

log = logging.getLogger(__name__)

FRAMING_BYTES = 1024  # record batch header (61), record header, key, lz4 frame on an incompressible value
DEAD_LETTER_HEADERS = 4096  # a dead letter's headers: error message up to 2,000 bytes, origin, reason
DEFAULT_BATCH_BYTES = 1048576  # the producer's batch.size in kcollect's producer_config


def broker_limits(admin: AdminClient, topics: Iterable[str], timeout: float) -> dict[str, int]:
    """``max.message.bytes`` of each topic as the broker reports it (a topic it does not answer for is
    left out: Tansu answers nothing useful)."""
    resources = [ConfigResource(ResourceType.TOPIC, topic) for topic in topics]
    found: dict[str, int] = {}
    if not resources:
        return found
    for resource, future in admin.describe_configs(resources, request_timeout=timeout).items():
        try:
            entry = future.result(timeout=timeout).get("max.message.bytes")
        except KafkaException as exc:
            log.debug("describe_configs %s: %s", resource.name, exc)
            continue
        if entry is not None and entry.value and str(entry.value).isdigit():
            found[resource.name] = int(entry.value)
    return found


@dataclass(frozen=True)
class TopicLimits:
    """Bytes per record for each topic (``KCOLLECT_MAX_MESSAGE_BYTES`` lowered by the broker's limit)."""

    record_bytes: dict[str, int]
    default: int

    @classmethod
    def read(cls, settings: Settings, topics: Iterable[str]) -> TopicLimits:
        names = list(topics)
        try:
            reported = broker_limits(make_admin(settings), names, settings.broker_timeout_seconds)
        except KafkaException as exc:
            log.warning("topic limits unknown (%s): using KCOLLECT_MAX_MESSAGE_BYTES", exc)
            reported = {}
        own = settings.max_message_bytes
        return cls({name: min(own, reported.get(name, own)) for name in names}, own)

    def record_limit(self, topic: str) -> int:
        return self.record_bytes.get(topic, self.default)

    def value_limit(self, topic: str, headers_bytes: int = 0) -> int:
        """The largest value a record of ``topic`` may carry besides ``headers_bytes`` of key and headers."""
        return max(1, self.record_limit(topic) - FRAMING_BYTES - headers_bytes)

    def producer_config(self) -> dict[str, Any]:
        """librdkafka keys for one producer writing to all these topics: batches no larger than the
        smallest limit, and ``produce()`` refusing anything larger than the largest."""
        smallest = min(self.record_bytes.values(), default=self.default)
        largest = max(self.record_bytes.values(), default=self.default)
        return {"batch.size": min(DEFAULT_BATCH_BYTES, smallest), "message.max.bytes": max(largest, 1000)}
