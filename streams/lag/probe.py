"""Consumer-group lag per partition: committed offset, exact end offset, and the lag between them.

``partition_lags(settings, group, topic)`` is the one-shot call; ``LagProbe`` keeps its Kafka clients
for repeated measurements (the enqueue throttle asks every fraction of a second). Committed offsets
come from ``streams.kafka.committed`` (a consumer of ``group`` that never joins or commits: the
AdminClient's offset listing crashes the process when the group's coordinator moves). End offsets come from
``streams.kafka.end_offsets``, which works around Tansu's under-reporting ListOffsets high watermark and is
exact on Apache Kafka too. The lag arithmetic is a pure function (``partition_lag``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from streams.kafka.admin import BrokerUnreachableError, require_topics
from streams.kafka.clients import make_admin, make_consumer
from streams.kafka.committed import CommittedOffsets
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
        self._committed = CommittedOffsets(settings)

    def committed(self) -> dict[int, int | None]:
        """Partition -> the group's committed offset (None when it has none)."""
        partitions = [(self._topic, p) for p in range(self._partitions)]
        try:
            answer = self._committed.read(self._group, partitions, self._timeout)
        except KafkaException as exc:
            raise BrokerUnreachableError(f"could not read offsets of group {self._group}: {exc}") from None
        return {p: answer.get((self._topic, p)) for p in range(self._partitions)}

    def end_offsets(self) -> dict[int, tuple[int, int]]:
        """Partition -> (log start, exact end)."""
        ends = exact_ends(self._admin, self._reader, {self._topic: self._partitions}, self._timeout)
        return {partition: value for (_, partition), value in ends.items()}

    def measure(self) -> list[PartitionLag]:
        self._admin.poll(0)  # serve the admin client's log and error callbacks
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
        self._committed.close()


def partition_lags(settings: Settings, group: str, topic: str) -> list[PartitionLag]:
    """Lag of consumer group ``group`` on every partition of ``topic`` (exact end offsets, see above)."""
    probe = LagProbe(settings, group, topic)
    try:
        return probe.measure()
    finally:
        probe.close()
