"""Time lag: the age of the oldest unconsumed record, from the timestamp of the record at the committed
offset, read with an assigned consumer that never joins a group.

``offsets_for_times`` is no help here (Tansu answers offset 0 for every time). A record's timestamp
never changes, so timestamps are cached by (topic, partition, offset): an exporter that collects every
few seconds reads a record again only when a group's committed offset has moved.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Consumer, KafkaError, TopicPartition

Position = tuple[str, int, int]  # topic, partition, offset


def age_seconds(timestamp_ms: int | None, now_ms: int, lag: int) -> float | None:
    """Seconds since ``timestamp_ms`` (never negative); 0 when nothing is unconsumed; None if unknown."""
    if lag <= 0:
        return 0.0
    if timestamp_ms is None:
        return None
    return max(0, now_ms - timestamp_ms) / 1000.0


class TimestampReader:
    """Reads record timestamps at given positions with ``consumer`` (assign only), cached (LRU)."""

    def __init__(self, consumer: Consumer, cache_size: int = 100_000) -> None:
        self._consumer = consumer
        self._cache: OrderedDict[Position, int] = OrderedDict()
        self._cache_size = cache_size

    def timestamps(self, positions: Iterable[Position], timeout: float) -> dict[Position, int | None]:
        """Position -> timestamp (ms) of the first record at or after it; None when none came in time.

        Only found timestamps are cached: a position at the end of a partition may get a record later.
        """
        wanted = set(positions)
        found: dict[Position, int | None] = {pos: self._cache[pos] for pos in wanted if pos in self._cache}
        missing = sorted(pos for pos in wanted if pos not in found)
        deadline = time.monotonic() + timeout
        while missing and time.monotonic() < deadline:
            # One offset per partition per round: assign() takes each partition once.
            round_: dict[tuple[str, int], int] = {}
            rest: list[Position] = []
            for topic, partition, offset in missing:
                if (topic, partition) in round_:
                    rest.append((topic, partition, offset))
                else:
                    round_[(topic, partition)] = offset
            found.update(self._read_round(round_, deadline))
            missing = rest
        for pos, stamp in found.items():
            if stamp is not None:
                self._cache[pos] = stamp
                self._cache.move_to_end(pos)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return {pos: found.get(pos) for pos in wanted}

    def _read_round(self, offsets: dict[tuple[str, int], int], deadline: float) -> dict[Position, int | None]:
        pending = dict(offsets)
        found: dict[Position, int | None] = {}
        self._consumer.assign([TopicPartition(t, p, o) for (t, p), o in pending.items()])
        try:
            while pending and time.monotonic() < deadline:
                for msg in self._consumer.consume(1000, 0.005):
                    where = (str(msg.topic()), int(msg.partition() or 0))
                    if where not in pending:
                        continue
                    error = msg.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            found[(*where, pending.pop(where))] = None
                        continue
                    if int(msg.offset() or 0) < pending[where]:
                        continue
                    kind, stamp = msg.timestamp()
                    found[(*where, pending.pop(where))] = None if kind == TIMESTAMP_NOT_AVAILABLE else stamp
        finally:
            self._consumer.unassign()
        return found
