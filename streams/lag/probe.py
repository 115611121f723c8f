"""Consumer-group lag per partition: committed offset, exact end offset, and the lag between them.

``partition_lags(settings, group, topic)`` is the one-shot call; ``LagProbe`` keeps its Kafka clients
for repeated measurements (the enqueue throttle asks every fraction of a second). Committed offsets
come from the AdminClient (no consumer ever joins or commits for ``group``). End offsets come from
``streams.kafka.end_offsets``, which works around Tansu's under-reporting ListOffsets high watermark and is
exact on Apache Kafka too. The lag arithmetic is a pure function (``partition_lag``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from streams.kafka.admin import BrokerUnreachableError, require_topics
from streams.kafka.clients import make_admin, make_consumer
from streams.kafka.end_offsets import exact_ends
from streams.settings.model import Settings


@dataclass(frozen=True)
class PartitionLag:
    """One partition of ``topic``: ``committed`` is None when the group has committed nothing there."""

    topic: str
    partition: int
    committed: int | None
    end: int
    lag: int


def partition_lag(committed: int | None, end: int, low: int = 0) -> int:
    """Records the group has still to consume: from its committed offset (or the log start when it
    has none, as ``auto.offset.reset=earliest`` would) to the end; never negative."""
    start = committed if committed is not None and committed >= 0 else low
    return max(0, end - max(start, low))


class LagProbe:
    """Measures a group's lag on one topic repeatedly with long-lived clients; ``close`` when done."""

    def __init__(self, settings: Settings, group: str, topic: str) -> None:
        self._timeout = settings.broker_timeout_seconds
        self._group = group
        self._topic = topic
        self._partitions = require_topics(settings, [topic])[topic]
        self._admin: AdminClient = make_admin(settings)
        # An assigned consumer that never joins a group: the id is required by the client, never used.
        self._reader = make_consumer(
            settings,
            f"kcollect-lag-reader-{uuid.uuid4().hex[:8]}",
            **{"enable.partition.eof": True, "fetch.wait.max.ms": 10},
        )

    def committed(self) -> dict[int, int | None]:
        """Partition -> the group's committed offset (None when it has none)."""
        request = ConsumerGroupTopicPartitions(
            self._group, [TopicPartition(self._topic, p) for p in range(self._partitions)]
        )
        future = self._admin.list_consumer_group_offsets([request], request_timeout=self._timeout)[
            self._group
        ]
        try:
            answer = future.result(timeout=self._timeout)
        except KafkaException as exc:
            raise BrokerUnreachableError(f"could not read offsets of group {self._group}: {exc}") from None
        result: dict[int, int | None] = {p: None for p in range(self._partitions)}
        for tp in answer.topic_partitions:
            if tp.error is None and tp.offset >= 0:
                result[tp.partition] = tp.offset
        return result

    def end_offsets(self) -> dict[int, tuple[int, int]]:
        """Partition -> (log start, exact end)."""
        ends = exact_ends(self._admin, self._reader, {self._topic: self._partitions}, self._timeout)
        return {partition: value for (_, partition), value in ends.items()}

    def _refresh_partitions(self) -> None:
        """The topic's partition count now: ``kcollect topics grow`` may have added partitions since."""
        metadata = self._admin.list_topics(topic=self._topic, timeout=self._timeout).topics.get(self._topic)
        if metadata is not None and metadata.error is None and len(metadata.partitions) > self._partitions:
            self._partitions = len(metadata.partitions)

    def measure(self) -> list[PartitionLag]:
        """Every partition's lag (partitions added since the last measurement included)."""
        self._admin.poll(0)  # serve the admin client's log and error callbacks
        self._refresh_partitions()
        ends = self.end_offsets()
        committed = self.committed()
        lags = []
        for p in range(self._partitions):
            low, end = ends[p]
            lags.append(
                PartitionLag(self._topic, p, committed[p], end, partition_lag(committed[p], end, low))
            )
        return lags

    def total(self) -> int:
        return sum(item.lag for item in self.measure())

    def close(self) -> None:
        self._reader.close()


def partition_lags(settings: Settings, group: str, topic: str) -> list[PartitionLag]:
    """Lag of consumer group ``group`` on every partition of ``topic`` (exact end offsets, see above)."""
    probe = LagProbe(settings, group, topic)
    try:
        return probe.measure()
    finally:
        probe.close()
