"""What the stream processor commits, and where it seeks a partition taken back and given again.

The broker takes a commit from any member of the current generation, for any partition: a chain that
commits work from before the current assignment moves the group's committed offset backwards under the
partition's owner (the campaign's seeds 771 and 1025 saw a committed offset fall back to about the first
batch's end). The double below is a consumer without a broker: ``consume`` hands out the records and
rebalances a test queues, ``commit`` and ``seek`` are recorded.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

from streams.steps.commit import Commit
from streams.steps.strategy import Partition
from streams.steps.stream_processor import StreamProcessor, current_work
from tests.unit.streams.steps.test_strategy import FakeStep

P0, P1 = ("requests", 0), ("requests", 1)
Callback = Callable[[Any, list[TopicPartition]], None]


@dataclass
class Record:
    """What the loop reads of a consumed record."""

    where: Partition
    at: int

    def topic(self) -> str:
        return self.where[0]

    def partition(self) -> int:
        return self.where[1]

    def offset(self) -> int:
        return self.at

    def error(self) -> None:
        return None


@dataclass
class Committed:
    """A ``committed()`` answer: offset and per-partition error, as librdkafka returns them."""

    topic: str
    partition: int
    offset: int
    error: KafkaError | None = None


Turn = Callable[["ScriptedConsumer"], list[Record]]


class ScriptedConsumer:
    """Each ``consume`` plays the next scripted turn (rebalances through the loop's callbacks, then
    records); ``committed`` answers from ``group`` (or with ``answer_error`` per partition)."""

    def __init__(self, turns: list[Turn], group: dict[Partition, int] | None = None) -> None:
        self.turns = deque(turns)
        self.group = dict(group or {})
        self.answer_error: KafkaError | None = None
        self.owned: list[TopicPartition] = []
        self.commits: list[dict[Partition, int]] = []
        self.seeks: list[tuple[Partition, int]] = []
        self.callbacks: dict[str, Callback] = {}

    def subscribe(
        self, topics: list[str], on_assign: Callback, on_revoke: Callback, on_lost: Callback
    ) -> None:
        self.callbacks = {"assign": on_assign, "revoke": on_revoke, "lost": on_lost}

    def assign_now(self, *partitions: Partition) -> None:
        tps = [TopicPartition(*p) for p in partitions]
        self.owned += tps
        self.callbacks["assign"](self, tps)

    def revoke_now(self, *partitions: Partition) -> None:
        tps = [TopicPartition(*p) for p in partitions]
        self.callbacks["revoke"](self, tps)
        self.owned = [tp for tp in self.owned if (tp.topic, tp.partition) not in partitions]

    def consume(self, num_messages: int, timeout: float) -> list[Record]:
        return self.turns.popleft()(self) if self.turns else []

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        self.commits.append({(tp.topic, tp.partition): tp.offset for tp in offsets})
        self.group.update(self.commits[-1])

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[Committed]:
        return [
            Committed(tp.topic, tp.partition, -1001, self.answer_error)
            if self.answer_error is not None
            else Committed(tp.topic, tp.partition, self.group.get((tp.topic, tp.partition), -1001))
            for tp in partitions
        ]

    def seek(self, tp: TopicPartition) -> None:
        self.seeks.append(((tp.topic, tp.partition), tp.offset))

    def assignment(self) -> list[TopicPartition]:
        return list(self.owned)

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, -1001) for tp in partitions]

    def pause(self, partitions: list[TopicPartition]) -> None:
        pass

    def resume(self, partitions: list[TopicPartition]) -> None:
        pass

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float, cached: bool) -> tuple[int, int]:
        return 0, 0


def _loop(consumer: ScriptedConsumer) -> tuple[StreamProcessor, list[Commit]]:
    commits: list[Commit] = []

    def factory(commit: Commit) -> FakeStep:
        commits.append(commit)
        return FakeStep()

    loop = StreamProcessor(consumer, ["requests"], factory, batch_size=100, shutdown_deadline=1.0)  # type: ignore[arg-type]
    consumer.subscribe(["requests"], loop._assign, loop._revoke, loop._lost)
    return loop, commits


def _turns(loop: StreamProcessor, count: int) -> None:
    for _ in range(count):
        loop._turn()


def test_current_work_keeps_offsets_past_the_first_record_consumed_since_the_assignment() -> None:
    first = {P0: 300, P1: 0}
    assert current_work({P0: 301, P1: 100}, first) == {P0: 301, P1: 100}
    assert current_work({P0: 300}, first) == {}  # nothing past the first record: not this assignment's
    assert current_work({P0: 99, P1: 5}, first) == {P1: 5}
    assert current_work({("requests", 2): 99}, first) == {}  # nothing consumed of it since assigned


def test_a_chain_never_commits_work_from_before_the_current_assignment() -> None:
    """Work on P0 from 0 to 99 finished in the first chain after P0 moved away and came back at 300:
    it must not be committed (the group would go 300 -> 100), while the current work is."""
    consumer = ScriptedConsumer(
        [
            lambda c: (c.assign_now(P0, P1), [Record(P0, at) for at in range(100)])[-1],
            lambda c: (c.revoke_now(P0), c.assign_now(P0), [Record(P1, 0)])[-1],
            lambda c: [Record(P0, 300), Record(P0, 301)],
        ],
        group={P0: 300},
    )
    loop, commits = _loop(consumer)
    _turns(loop, 3)
    commits[0]({P0: 100, P1: 1})  # the first chain, finishing late
    assert consumer.commits == [{P1: 1}]
    assert consumer.group[P0] == 300
    commits[-1]({P0: 302})
    assert consumer.commits[-1] == {P0: 302}


def test_a_commit_of_a_partition_no_longer_owned_is_not_sent() -> None:
    consumer = ScriptedConsumer(
        [
            lambda c: (c.assign_now(P0, P1), [Record(P0, 10), Record(P1, 20)])[-1],
            lambda c: (c.revoke_now(P0, P1), [])[-1],
        ]
    )
    loop, commits = _loop(consumer)
    _turns(loop, 2)
    commits[0]({P0: 11, P1: 21})
    assert consumer.commits == []


def _taken_back_and_given_again(c: ScriptedConsumer) -> list[Record]:
    c.revoke_now(P0)
    c.assign_now(P0)
    return [Record(P0, 150), Record(P0, 151)]  # read before the revoke, returned after it


def test_a_partition_given_again_is_sought_to_its_committed_offset() -> None:
    consumer = ScriptedConsumer(
        [lambda c: (c.assign_now(P0), [Record(P0, 100)])[-1], _taken_back_and_given_again], group={P0: 120}
    )
    loop, _ = _loop(consumer)
    _turns(loop, 2)
    assert consumer.seeks == [(P0, 120)]


def test_a_committed_offset_the_broker_answers_with_an_error_is_not_taken_for_none() -> None:
    """A per-partition error comes with an INVALID offset: seeking to the beginning would do the
    partition's whole log again (and commit its first batch's end); the first record dropped is safe."""
    consumer = ScriptedConsumer(
        [lambda c: (c.assign_now(P0), [Record(P0, 100)])[-1], _taken_back_and_given_again], group={P0: 120}
    )
    consumer.answer_error = KafkaError(KafkaError.UNSTABLE_OFFSET_COMMIT)
    loop, _ = _loop(consumer)
    _turns(loop, 2)
    assert consumer.seeks == [(P0, 150)]


def test_a_partition_without_a_committed_offset_is_read_from_its_beginning() -> None:
    consumer = ScriptedConsumer(
        [lambda c: (c.assign_now(P0), [Record(P0, 0)])[-1], _taken_back_and_given_again]
    )
    loop, _ = _loop(consumer)
    _turns(loop, 2)
    assert consumer.seeks == [(P0, OFFSET_BEGINNING)]
