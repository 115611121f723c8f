"""Topic administration: create the declared topics, and check that topics exist before producing.

Producing to a missing topic on some brokers creates it with a default partition count, so a typo
would silently make a new topic: every producer checks first (``require_topics``).
"""

from __future__ import annotations

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from schemas.topics import ALL_TOPICS, TopicSpec
from streams.kafka.clients import make_admin
from streams.settings.model import Settings


class TopicMissingError(RuntimeError):
    """A topic kcollect needs does not exist."""


class BrokerUnreachableError(RuntimeError):
    """The broker did not answer within the configured time."""


def existing_topics(admin: AdminClient, timeout: float) -> dict[str, int]:
    """Topic name -> partition count, or BrokerUnreachableError after ``timeout`` seconds."""
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise BrokerUnreachableError(
            f"the Kafka broker did not answer within {timeout:.0f} s ({exc})"
        ) from None
    return {name: len(topic.partitions) for name, topic in metadata.topics.items() if topic.error is None}


def create_topics(settings: Settings, specs: tuple[TopicSpec, ...] = ALL_TOPICS) -> list[str]:
    """Create the declared topics that do not exist yet; return the names created (idempotent)."""
    admin = make_admin(settings)
    present = existing_topics(admin, settings.broker_timeout_seconds)
    wanted = [
        NewTopic(
            spec.name(settings.topic_prefix),
            num_partitions=spec.partition_count(settings.partitions),
            replication_factor=-1,
            config=dict(spec.config),
        )
        for spec in specs
        if spec.name(settings.topic_prefix) not in present
    ]
    if not wanted:
        return []
    created = []
    for name, future in admin.create_topics(wanted, request_timeout=settings.broker_timeout_seconds).items():
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    return created


def require_topics(settings: Settings, names: list[str]) -> dict[str, int]:
    """Partition counts of ``names``; TopicMissingError naming the missing ones."""
    present = existing_topics(make_admin(settings), settings.broker_timeout_seconds)
    missing = [name for name in names if name not in present]
    if missing:
        raise TopicMissingError(f"topic(s) {', '.join(missing)} do not exist: run `kcollect topics create`")
    return {name: present[name] for name in names}
