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

Unlike the AdminClient, a consumer's OffsetFetch hands a coordinator that is loading or has just moved
(NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS: every broker restart and every
fresh broker's first group) straight back as an error; ``read`` asks again until its timeout, so a
caller sees those only when they last.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from streams.kafka.clients import make_consumer
from streams.settings.model import Settings

RETRY_PAUSE = 0.1  # seconds between two asks while the coordinator is away
PASSING = frozenset(
    {
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError._WAIT_COORD,
        KafkaError._TRANSPORT,
        KafkaError._TIMED_OUT,
        KafkaError.REQUEST_TIMED_OUT,
    }
)
"""Errors of a coordinator that is moving, loading or briefly unreachable: asked again until the timeout."""


def passing(exc: KafkaException) -> bool:
    """True for an error that goes away by itself (``PASSING``, or one librdkafka marks retriable)."""
    error = exc.args[0] if exc.args else None
    return isinstance(error, KafkaError) and (error.code() in PASSING or bool(error.retriable()))


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
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self._read_once(group, wanted, max(deadline - time.monotonic(), 0.5))
            except KafkaException as exc:
                if not passing(exc) or time.monotonic() + RETRY_PAUSE > deadline:
                    raise
            time.sleep(RETRY_PAUSE)

    def _read_once(
        self, group: str, wanted: list[TopicPartition], timeout: float
    ) -> dict[tuple[str, int], int]:
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
