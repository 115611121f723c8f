"""Restart the fetch of an assigned partition that stopped delivering while it has records to give.

librdkafka can leave an assigned partition unfetched for ever while the consumer polls happily
(#5586: an OffsetFetch answered NOT_COORDINATOR, as when a broker restarts, leaves the partition
waiting). In the 3-broker rolling-restart drill (``tests/drills/test_kafka_cluster.py``) a sink's
partition went 20 s without its next record after a broker restart. ``StallWatch`` keeps each
assigned partition's position; one whose position has not moved for ``after`` seconds while the
broker's high watermark is beyond it is sought to that position again, which restarts librdkafka's
fetcher there. The position is the next record the
application has not received, so no record is skipped and none reaches the chain twice.

The caller passes the partitions it holds back itself (paused for backpressure or for the retry gate):
those are never touched. Watermarks are asked of the broker only for partitions already standing still,
each at most every ``after`` seconds, and a check stops at the first that the broker does not answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from confluent_kafka import KafkaException, TopicPartition

from streams.steps.strategy import Partition

log = logging.getLogger(__name__)

STALL_SECONDS = 20.0
CHECK_INTERVAL = 5.0
WATERMARK_TIMEOUT = 2.0


class StallConsumer(Protocol):
    """What the watch needs of a consumer (``confluent_kafka.Consumer`` has it)."""

    def assignment(self) -> list[TopicPartition]: ...
    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]: ...
    def committed(self, partitions: list[TopicPartition], timeout: float = ...) -> list[TopicPartition]: ...
    def get_watermark_offsets(
        self, partition: TopicPartition, timeout: float = ..., cached: bool = ...
    ) -> tuple[int, int]: ...
    def seek(self, partition: TopicPartition) -> None: ...


class StallWatch:
    """Seeks partitions whose position stands still although the broker has records past it."""

    def __init__(
        self,
        consumer: StallConsumer,
        after: float = STALL_SECONDS,
        interval: float = CHECK_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._consumer = consumer
        self._after = after
        self._interval = interval
        self._clock = clock
        self._last_check = clock()
        self._seen: dict[Partition, tuple[int, float]] = {}  # position, and since when
        self.restarts = 0

    def check(self, held: Iterable[Partition] = ()) -> list[tuple[Partition, int]]:
        """At most every ``interval`` s: restart the stalled partitions not in ``held``; returns them
        with the offset each was sought to."""
        now = self._clock()
        if now - self._last_check < self._interval:
            return []
        self._last_check = now
        assignment = self._consumer.assignment()
        positions = {(tp.topic, tp.partition): tp.offset for tp in self._consumer.position(assignment)}
        skip = set(held)  # held back on purpose: their stillness counts from when they are let go
        self._seen = {p: (at, now) if p in skip else self._since(p, at, now) for p, at in positions.items()}
        standing = [p for p, (_, since) in self._seen.items() if p not in skip and now - since >= self._after]
        restarted: list[tuple[Partition, int]] = []
        for partition in standing:  # each asked again only ``after`` s later, restarted or at its end
            self._seen[partition] = (positions[partition], now)
            try:
                at = self._restart(partition, positions[partition])
            except KafkaException as exc:  # broker busy or away: the others wait for the next check
                log.debug("stall check of %s/%d: %s", partition[0], partition[1], exc)
                break
            if at is not None:
                restarted.append((partition, at))
        return restarted

    def hold_all(self) -> None:
        """Everything is held back now (the chain is full, downstream asks to wait): start afresh."""
        self._seen.clear()

    def _since(self, partition: Partition, position: int, now: float) -> tuple[int, float]:
        before = self._seen.get(partition)
        return before if before is not None and before[0] == position else (position, now)

    def _restart(self, partition: Partition, position: int) -> int | None:
        """Seek ``partition`` to where it stands when the broker has records past it; the offset, or None."""
        tp = TopicPartition(*partition)
        low, high = self._consumer.get_watermark_offsets(tp, timeout=WATERMARK_TIMEOUT, cached=False)
        start = position if position >= 0 else self._committed(tp, low)
        if high <= start:
            return None
        self._consumer.seek(TopicPartition(partition[0], partition[1], start))
        self.restarts += 1
        log.warning(
            "%s/%d delivered nothing for %.0f s with records up to %d: fetching again from %d",
            partition[0], partition[1], self._after, high, start,
        )  # fmt: skip
        return start

    def _committed(self, tp: TopicPartition, low: int) -> int:
        """Where a partition that never fetched starts: its committed offset, else the log start."""
        (answer,) = self._consumer.committed([tp], timeout=WATERMARK_TIMEOUT)
        if answer.error is not None:  # an INVALID offset here is not "none committed": try at the next check
            raise KafkaException(answer.error)
        return answer.offset if answer.offset >= 0 else low
