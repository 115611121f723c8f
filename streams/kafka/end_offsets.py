"""Exact end offsets: the one place that works around Tansu's under-reporting high watermark.

Tansu 0.6's ListOffsets answers the base offset of the last stored batch + 1, not the end offset
(50,000 records in batches of 10,000 read as 40,001). The method, exact on Tansu and on Apache Kafka:
take ListOffsets' high watermark H, read each partition from max(H - 1, 0) to partition EOF with a
consumer that never joins a group, and take the maximum of H, the last offset read + 1 and the EOF
offset (``true_end``). On Kafka H is exact and the read is one record. Every partition of every topic
is asked in one ListOffsets request and their tails are read with one assignment.
"""

from __future__ import annotations

import time

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

from streams.kafka.admin import BrokerUnreachableError


def true_end(high_watermark: int, last_seen_offset: int | None, eof_offset: int | None) -> int:
    """The exact end offset from the ListOffsets high watermark and what a read of the tail saw.

    On Tansu the high watermark is the last batch's base offset + 1 (too low); the last record read
    + 1 and the partition-EOF offset are exact. On Kafka all three agree (or the last record is a
    control record, so the high watermark is the larger): the maximum is right on both.
    """
    candidates = [high_watermark]
    if last_seen_offset is not None:
        candidates.append(last_seen_offset + 1)
    if eof_offset is not None and eof_offset >= 0:
        candidates.append(eof_offset)
    return max(candidates)


Partition = tuple[str, int]


RETRY_PAUSE = 0.1  # seconds between ListOffsets attempts after a retriable error


def is_retriable(exc: KafkaException) -> bool:
    """True for a broker error that goes away by itself: a leader moving or just elected (Apache Kafka
    answers ``UNKNOWN_LEADER_EPOCH`` / ``NOT_LEADER_OR_FOLLOWER`` for a while after a topic is created or
    the broker restarts)."""
    error = exc.args[0] if exc.args else None
    return isinstance(error, KafkaError) and bool(error.retriable())


def _list_offsets_once(
    admin: AdminClient, partitions: list[Partition], spec: OffsetSpec, timeout: float
) -> dict[Partition, int]:
    request = {TopicPartition(t, p): spec for t, p in partitions}
    answer: dict[Partition, int] = {}
    for tp, future in admin.list_offsets(request, request_timeout=timeout).items():
        answer[(tp.topic, tp.partition)] = int(future.result(timeout=timeout).offset)
    return answer


def _list_offsets(
    admin: AdminClient, partitions: list[Partition], spec: OffsetSpec, timeout: float
) -> dict[Partition, int]:
    """ListOffsets for every partition at once, asked again after a retriable error until ``timeout``."""
    if not partitions:
        return {}
    deadline = time.monotonic() + timeout
    while True:
        try:
            return _list_offsets_once(admin, partitions, spec, max(deadline - time.monotonic(), 0.5))
        except KafkaException as exc:
            if not is_retriable(exc) or time.monotonic() + RETRY_PAUSE > deadline:
                raise BrokerUnreachableError(f"could not list offsets: {exc}") from None
        time.sleep(RETRY_PAUSE)


def high_watermarks(admin: AdminClient, partitions: list[Partition], timeout: float) -> dict[Partition, int]:
    """ListOffsets' high watermarks (exact on Apache Kafka; see ``exact_ends`` for Tansu)."""
    return _list_offsets(admin, partitions, OffsetSpec.latest(), timeout)  # type: ignore[no-untyped-call]


def exact_ends(
    admin: AdminClient, reader: Consumer, topics: dict[str, int], timeout: float
) -> dict[Partition, tuple[int, int]]:
    """(topic, partition) -> (log start, exact end) for every partition of ``topics`` (name -> count).

    ``reader`` is a consumer with ``enable.partition.eof`` that never joins a group; it is left
    unassigned.
    """
    deadline = time.monotonic() + timeout
    partitions = [(t, p) for t, n in sorted(topics.items()) for p in range(n)]
    highs = _list_offsets(admin, partitions, OffsetSpec.latest(), timeout)  # type: ignore[no-untyped-call]
    lows = _list_offsets(admin, partitions, OffsetSpec.earliest(), timeout)  # type: ignore[no-untyped-call]
    to_read = [(t, p) for t, p in partitions if highs[(t, p)] > 0]
    last: dict[Partition, int] = {}
    eof: dict[Partition, int] = {}
    if to_read:
        reader.assign([TopicPartition(t, p, max(highs[(t, p)] - 1, 0)) for t, p in to_read])
        try:
            while len(eof) < len(to_read):
                if time.monotonic() > deadline:
                    raise BrokerUnreachableError(f"reading the tails of {len(topics)} topic(s) took too long")
                for msg in reader.consume(10000, 0.005):
                    where = (str(msg.topic()), int(msg.partition() or 0))
                    error = msg.error()
                    if error is None:
                        last[where] = int(msg.offset() or 0)
                    elif error.code() == KafkaError._PARTITION_EOF:
                        eof[where] = int(msg.offset() or 0)
                    elif error.fatal() or error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                        raise BrokerUnreachableError(f"reading {where[0]}[{where[1]}]: {error.str()}")
        finally:
            reader.unassign()
    return {
        tp: (max(lows.get(tp, 0), 0), true_end(highs[tp], last.get(tp), eof.get(tp))) for tp in partitions
    }
