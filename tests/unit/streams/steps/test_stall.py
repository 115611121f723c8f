"""``streams.steps.stall.StallWatch`` with a consumer stand-in and a hand-driven clock: a partition
whose position stands still while the broker has records past it is sought to that position again;
one at its end, one held back by the caller, or one that keeps moving is left alone."""

from __future__ import annotations

from confluent_kafka import TopicPartition

from streams.steps.stall import StallWatch


class FakeConsumer:
    def __init__(self, positions: dict[int, int], highs: dict[int, int], committed: int = -1001) -> None:
        self.positions, self.highs, self.committed_offset = positions, highs, committed
        self.sought: list[tuple[int, int]] = []

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition("t", p) for p in self.positions]

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, self.positions[tp.partition]) for tp in partitions]

    def committed(self, partitions: list[TopicPartition], timeout: float = 1.0) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, self.committed_offset) for tp in partitions]

    def get_watermark_offsets(
        self, partition: TopicPartition, timeout: float = 1.0, cached: bool = False
    ) -> tuple[int, int]:
        assert not cached, "a stalled fetcher's cached watermark is as stale as the fetcher"
        return 0, self.highs[partition.partition]

    def seek(self, partition: TopicPartition) -> None:
        self.sought.append((partition.partition, partition.offset))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_partition_standing_still_with_records_past_it_is_sought_to_its_position() -> None:
    consumer = FakeConsumer({0: 10, 1: 50, 2: 7}, {0: 100, 1: 50, 2: 90})
    clock = Clock()
    watch = StallWatch(consumer, after=20, interval=5, clock=clock)
    for step in range(1, 5):  # partition 2 keeps moving; 0 stands still with records; 1 is at its end
        clock.now = 5.0 * step
        consumer.positions[2] += 5
        assert watch.check() == []
    clock.now = 25.0
    consumer.positions[2] += 5
    assert watch.check() == [(("t", 0), 10)]
    assert consumer.sought == [(0, 10)] and watch.restarts == 1
    clock.now = 27.0  # within the interval: nothing asked
    assert watch.check() == []
    clock.now = 40.0  # 15 s after the restart: not yet again
    assert watch.check() == []
    clock.now = 46.0  # 0 again; 2 has stood still since 25 s with records past it too
    assert watch.check() == [(("t", 0), 10), (("t", 2), 32)]


def test_held_partitions_and_a_held_consumer_start_afresh() -> None:
    consumer = FakeConsumer({0: 10, 1: 20}, {0: 100, 1: 100})
    clock = Clock()
    watch = StallWatch(consumer, after=20, interval=5, clock=clock)
    for step in range(1, 6):
        clock.now = 5.0 * step
        watch.check(held={("t", 1)})
    assert consumer.sought == [(0, 10)]  # at 25 s; 1 was held back by the caller all along
    clock.now = 30.0
    assert watch.check() == []  # 1 let go just now: its stillness counts from here
    watch.hold_all()
    clock.now = 35.0
    assert watch.check() == []
    clock.now = 55.0
    assert sorted(watch.check()) == [(("t", 0), 10), (("t", 1), 20)]


def test_a_partition_that_never_fetched_restarts_from_its_committed_offset_or_the_log_start() -> None:
    consumer = FakeConsumer({0: -1001}, {0: 100}, committed=42)
    clock = Clock()
    watch = StallWatch(consumer, after=10, interval=5, clock=clock)
    for now in (5.0, 10.0, 15.0):
        clock.now = now
        watch.check()
    assert consumer.sought == [(0, 42)]
    fresh = FakeConsumer({0: -1001}, {0: 100})
    watch = StallWatch(fresh, after=10, interval=5, clock=clock)
    for now in (20.0, 25.0, 30.0):
        clock.now = now
        watch.check()
    assert fresh.sought == [(0, 0)]


def test_a_partition_at_its_end_is_asked_again_only_after_the_stall_time_and_errors_stop_the_check() -> None:
    from confluent_kafka import KafkaError, KafkaException

    class Counting(FakeConsumer):
        def __init__(self) -> None:
            super().__init__({0: 50, 1: 10, 2: 10}, {0: 50, 1: 100, 2: 100})
            self.asked: list[int] = []
            self.fail = False

        def get_watermark_offsets(
            self, partition: TopicPartition, timeout: float = 1.0, cached: bool = False
        ) -> tuple[int, int]:
            self.asked.append(partition.partition)
            if self.fail:
                raise KafkaException(KafkaError(KafkaError._TIMED_OUT))
            return super().get_watermark_offsets(partition, timeout, cached)

    consumer = Counting()
    clock = Clock()
    watch = StallWatch(consumer, after=20, interval=5, clock=clock)
    for now in (5.0, 10.0, 15.0, 20.0, 25.0):
        clock.now = now
        watch.check()
    assert consumer.asked == [0, 1, 2] and consumer.sought == [(1, 10), (2, 10)]
    clock.now = 30.0
    watch.check()
    assert consumer.asked == [0, 1, 2]  # partition 0 at its end: not asked again before 45 s
    consumer.fail = True
    clock.now = 45.0
    assert watch.check() == []
    assert consumer.asked == [0, 1, 2, 0]  # the broker did not answer: the check stopped there


def test_a_committed_offset_answered_with_an_error_is_not_taken_for_the_log_start() -> None:
    """librdkafka returns a per-partition error with an INVALID offset: read as "none committed", the
    partition would be fetched again from its log start and its first batch's end committed."""
    from confluent_kafka import KafkaError

    from tests.unit.streams.steps.test_stream_processor_commit import Committed

    class Refusing(FakeConsumer):
        def committed(self, partitions: list[TopicPartition], timeout: float = 1.0) -> list[Committed]:  # type: ignore[override]
            unstable = KafkaError(KafkaError.UNSTABLE_OFFSET_COMMIT)
            return [Committed(tp.topic, tp.partition, -1001, unstable) for tp in partitions]

    consumer = Refusing({0: -1001}, {0: 100}, committed=42)
    clock = Clock()
    watch = StallWatch(consumer, after=10, interval=5, clock=clock)
    for now in (5.0, 10.0, 15.0):
        clock.now = now
        assert watch.check() == []
    assert consumer.sought == []
