"""A consumer group's committed offsets, read through a consumer of that group that never joins it.

Not the AdminClient's ``list_consumer_group_offsets``: when the group's coordinator has just moved (a
broker stopped or restarted) the broker answers NOT_COORDINATOR, and librdkafka (2.16 and before)
handles that answer by dereferencing the consumer-group handle an AdminClient does not have: the
whole process dies with SIGSEGV (librdkafka issue #5040; found here by the 3-broker rolling-restart
drill, ``tests/drills/test_kafka_cluster.py``). Every long-lived reader of committed offsets (the
processor's lag gate, the enqueue throttle, the exporter, the run checker's recovery watch) would die
with it. A consumer's OffsetFetch goes through its own group handle, which looks the coordinator up
again; the failure is then an exception like any other broker error.

The reader's consumers never subscribe, assign or commit: the group's members, generation and offsets
are left as they are.
"""

from __future__ import annotations

from collections.abc import Iterable

from confluent_kafka import Consumer, KafkaException, TopicPartition

from streams.kafka.clients import make_consumer
from streams.settings.model import Settings


class CommittedOffsets:
    """Committed offsets of any number of groups; one idle consumer per group, kept until ``close``."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._consumers: dict[str, Consumer] = {}

    def read(
        self, group: str, partitions: Iterable[tuple[str, int]], timeout: float
    ) -> dict[tuple[str, int], int]:
        """(topic, partition) -> ``group``'s committed offset, for the given partitions it committed on.

        Raises KafkaException when the broker does not answer within ``timeout`` seconds."""
        wanted = [TopicPartition(topic, partition) for topic, partition in partitions]
        if not wanted:
            return {}
        answer = self._consumer(group).committed(wanted, timeout=timeout)
        failed = [tp for tp in answer if tp.error is not None]
        if failed:
            raise KafkaException(failed[0].error)
        return {(tp.topic, tp.partition): tp.offset for tp in answer if tp.offset >= 0}

    def _consumer(self, group: str) -> Consumer:
        consumer = self._consumers.get(group)
        if consumer is None:
            consumer = make_consumer(self._settings, group)
            self._consumers[group] = consumer
        return consumer

    def close(self) -> None:
        consumers, self._consumers = list(self._consumers.values()), {}
        for consumer in consumers:
            consumer.close()
