"""A batching producer: delivery reports counted per batch, BufferError handled, nothing dropped silently.

Following confluent-kafka's examples: ``produce`` then ``poll(0)`` to serve callbacks; on BufferError
(the local queue is full) poll until there is room and produce again. Each produced batch gets a
``DeliveryTracker``; its offsets may be committed only once ``done`` and not ``failed``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from streams.kafka.clients import make_producer
from streams.settings.model import Settings

Headers = list[tuple[str, str | bytes | None]]


@dataclass
class DeliveryTracker:
    """Counts the delivery reports of one batch of produced records."""

    pending: int = 0
    delivered: int = 0
    failed: int = 0
    first_errors: list[str] = field(default_factory=list)

    def on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        self.pending -= 1
        if err is None:
            self.delivered += 1
            return
        self.failed += 1
        if len(self.first_errors) < 5:
            self.first_errors.append(f"{msg.topic()}: {err.str()}")

    @property
    def done(self) -> bool:
        return self.pending == 0


class BatchProducer:
    """Produces batches of (key, value) records to a topic and tracks their delivery."""

    def __init__(self, settings: Settings, **extra: Any) -> None:
        self._producer = make_producer(settings, **extra)

    @property
    def raw(self) -> Producer:
        return self._producer

    def produce_batch(
        self,
        topic: str,
        records: Iterable[tuple[bytes | str, bytes]],
        tracker: DeliveryTracker | None = None,
        headers: Headers | None = None,
    ) -> DeliveryTracker:
        """Queue every record; returns the tracker whose counts the delivery callbacks update."""
        return self._queue(topic, ((key, value, -1) for key, value in records), tracker, headers)

    def produce_to_partitions(
        self, topic: str, records: Iterable[tuple[int, bytes]], tracker: DeliveryTracker | None = None
    ) -> DeliveryTracker:
        """Queue each ``(partition, value)`` record, keyless, to that partition of ``topic``."""
        return self._queue(topic, ((None, value, partition) for partition, value in records), tracker, None)

    def produce_keyed_to_partition(
        self,
        topic: str,
        partition: int,
        records: Iterable[tuple[bytes, bytes | None]],
        tracker: DeliveryTracker | None = None,
    ) -> DeliveryTracker:
        """Queue each ``(key, value)`` record to ``partition`` of ``topic``; a None value is a tombstone."""
        return self._queue(topic, ((key, value, partition) for key, value in records), tracker, None)

    def _queue(
        self,
        topic: str,
        records: Iterable[tuple[bytes | str | None, bytes | None, int]],
        tracker: DeliveryTracker | None,
        headers: Headers | None,
    ) -> DeliveryTracker:
        """Queue ``(key, value, partition)`` records (partition -1: the partitioner picks by key)."""
        tracker = tracker or DeliveryTracker()
        produce = self._producer.produce
        on_delivery = tracker.on_delivery
        for key, value, partition in records:
            tracker.pending += 1
            while True:
                try:
                    produce(topic, value, key, partition=partition, on_delivery=on_delivery, headers=headers)
                    break
                except BufferError:
                    self._producer.poll(0.05)
        self._producer.poll(0)
        return tracker

    def partition_count(self, topic: str, timeout: float = 10.0) -> int:
        """How many partitions ``topic`` has (from the broker's metadata)."""
        metadata = self._producer.list_topics(topic, timeout=timeout).topics.get(topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            raise RuntimeError(f"topic {topic!r} has no partitions in the broker's metadata")
        return len(metadata.partitions)

    def poll(self, timeout: float = 0.0) -> int:
        return int(self._producer.poll(timeout))

    def wait(self, tracker: DeliveryTracker, timeout: float) -> bool:
        """Serve callbacks until ``tracker`` is done or ``timeout`` passes; True when done."""
        deadline = time.monotonic() + timeout
        while not tracker.done:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._producer.poll(min(remaining, 0.1))
        return True

    def flush(self, timeout: float) -> int:
        """Wait for every queued record; returns how many are still not delivered."""
        return int(self._producer.flush(timeout))
