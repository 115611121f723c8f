"""The sink's consumer-thread steps with fake messages: per-partition segments, dead letters at
decode with a run_id header, window hand-over and backpressure, and the before_commit crash point."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from processors.sink.columns import CLIENT_ID
from processors.sink.insert import SinkStats
from processors.sink.steps import ResultDeadLetters, ResultDecoder, WindowStep
from processors.sink.windowing import PartitionWindow, WindowGroup, WindowLimits
from streams.kafka.dead_letter import header_map
from streams.kafka.producer import DeliveryTracker
from streams.steps.strategy import Batch, MessageRejected


class Msg:
    def __init__(self, partition: int, offset: int, value: bytes | None, key: bytes = b"k") -> None:
        self._p, self._o, self._v, self._k = partition, offset, value, key

    def topic(self) -> str:
        return "t.results"

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o

    def value(self) -> bytes | None:
        return self._v

    def key(self) -> bytes:
        return self._k


class Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, list[tuple[bytes, bytes]], Any]] = []

    def produce_batch(self, topic: str, records: Any, tracker: DeliveryTracker, headers: Any) -> None:
        self.sent.append((topic, list(records), headers))
        tracker.pending += 1


def good(client: str) -> bytes:
    return orjson.dumps(
        {"v": 1, "run_id": "r-1", "client_id": client, "requested_at_ms": 1, "collected_at_ms": 2,
         "status": "ok", "metrics": {"a": 1.0}, "computed": {}}
    )  # fmt: skip


def test_decoder_makes_per_partition_segments_and_dead_letters_bad_records() -> None:
    producer = Producer()
    stats = SinkStats()
    decoder = ResultDecoder(ResultDeadLetters(producer, "t.results.dlq", stats), stats)  # type: ignore[arg-type]
    bad = orjson.dumps({"v": 1, "run_id": "r-1", "client_id": "x", "metrics": {"a": "high"}})
    messages = [Msg(0, 10, good("a")), Msg(1, 5, good("b")), Msg(0, 11, bad, b"x"), Msg(0, 12, good("c"))]
    out = decoder.decode(Batch(messages, {("t.results", 0): 13, ("t.results", 1): 6}))  # type: ignore[arg-type]
    by_partition = {s.partition: s for s in out.payload}
    p0, p1 = by_partition[("t.results", 0)], by_partition[("t.results", 1)]
    assert (p0.start, p0.end, p0.offsets) == (10, 13, [10, 12])
    assert p0.columns[CLIENT_ID] == ["a", "c"] and len(p0.trackers) == 1
    assert (p1.start, p1.end, p1.offsets, p1.trackers) == (5, 6, [5], [])
    assert stats.decoded == 3 and stats.invalid == 1
    (topic, records, headers) = producer.sent[0]
    assert topic == "t.results.dlq" and records == [(b"x", bad)]
    found = header_map(headers)
    assert found["stage"] == "sink-decode" and found["run_id"] == "r-1"
    assert found["original_offset"] == "11" and found["error_class"] == "CodecError"


class Full:
    """An insert step that takes ``room`` groups of windows, then rejects."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.groups: list[WindowGroup] = []

    @property
    def taken(self) -> list[PartitionWindow]:
        return [w for group in self.groups for w in group.windows]

    def submit(self, batch: Batch[WindowGroup]) -> None:
        if len(self.groups) >= self.room:
            raise MessageRejected
        assert batch.offsets == batch.payload.ends()
        self.groups.append(batch.payload)

    def poll(self) -> None:
        pass

    def join(self, timeout: float | None = None) -> None:
        pass

    def close(self) -> None:
        pass

    def terminate(self) -> None:
        pass


def test_window_step_hands_over_closed_windows_and_refuses_when_backed_up() -> None:
    producer = Producer()
    stats = SinkStats()
    decoder = ResultDecoder(ResultDeadLetters(producer, "dlq", stats), stats)  # type: ignore[arg-type]
    now = [0.0]
    nxt = Full(room=1)
    step = WindowStep(WindowLimits(2, 10**9, 1.0), nxt, stats, clock=lambda: now[0])  # type: ignore[arg-type]

    def batch(start: int, count: int) -> Any:
        messages = [Msg(0, o, good(str(o))) for o in range(start, start + count)]
        return decoder.decode(Batch(messages, {("t.results", 0): start + count}))  # type: ignore[arg-type]

    step.submit(batch(0, 2))  # closes [0, 2): taken
    assert [(w.start, w.end) for w in nxt.taken] == [(0, 2)]
    step.submit(batch(2, 2))  # closes [2, 4): the insert step is full, held (2 rows = a window's worth)
    with pytest.raises(MessageRejected):
        step.submit(batch(4, 1))
    nxt.room = 5
    step.submit(batch(4, 1))
    assert [(w.start, w.end) for w in nxt.taken] == [(0, 2), (2, 4)]
    now[0] = 1.0
    step.poll()  # [4, 5) is due by time
    assert [(w.start, w.end) for w in nxt.taken][-1] == (4, 5)
    assert stats.windows == 3


def test_windows_closed_together_are_one_group_with_every_partitions_offset() -> None:
    producer = Producer()
    stats = SinkStats()
    decoder = ResultDecoder(ResultDeadLetters(producer, "dlq", stats), stats)  # type: ignore[arg-type]
    now = [0.0]
    nxt = Full(room=5)
    step = WindowStep(WindowLimits(5, 10**9, 1.0), nxt, stats, clock=lambda: now[0])  # type: ignore[arg-type]
    bad = b"not json"
    messages = [Msg(0, 10, good("a")), Msg(1, 20, good("b")), Msg(1, 21, bad), Msg(2, 30, good("c"))]
    offsets = {("t.results", 0): 11, ("t.results", 1): 22, ("t.results", 2): 31}
    step.submit(decoder.decode(Batch(messages, offsets)))  # type: ignore[arg-type]
    assert nxt.groups == []  # 3 rows of 5: every window stays open
    now[0] = 1.0
    step.poll()  # the oldest window is due by time: all three close together
    (group,) = nxt.groups
    assert [(w.partition[1], w.start, w.end) for w in group.windows] == [
        (0, 10, 11),
        (1, 20, 22),
        (2, 30, 31),
    ]
    assert group.ends() == offsets
    assert group.columns[CLIENT_ID] == ["a", "b", "c"] and group.count == 3
    assert group.offsets == [10, 20, 30] and group.positions == [0, 0, 0]
    assert [m.offset() for m in group.sources] == [10, 20, 30]
    assert group.label() == "t.results:0:10-11+t.results:1:20-22+t.results:2:30-31"
    assert stats.windows == 3 and stats.invalid == 1
