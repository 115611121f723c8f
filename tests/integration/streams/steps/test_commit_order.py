"""A group's committed offsets move forward only, even when librdkafka sends a commit again.

librdkafka retries an OffsetCommit the broker answered with a retriable error (REQUEST_TIMED_OUT,
COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR, a broken connection: ``rd_kafka_handle_OffsetCommit``)
after ``retry.backoff.ms``. An asynchronous commit sent meanwhile can land first; the retried, older
offsets then land after it, and the committed offset moves backwards (the campaign's seed 771 saw
200 -> 100 on a loaded machine, with no rebalance and no warning). A synchronous commit returns only
once its own request is done, retries included, so commits made one at a time land in order.

``RetriedCommits`` is a real consumer on a real broker whose asynchronous commits land the way a
retried one does: each is held back and sent after the commit that follows it. Its synchronous
commits go through as they are. After every commit it sends, it reads the group's committed offsets
back from the broker, so the test sees every value the broker held, in order.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from streams.settings.librdkafka import consumer_config
from streams.steps.commit import CommitOffsets
from streams.steps.strategy import ProcessingStep
from streams.steps.stream_processor import StreamProcessor
from tests.integration.lagkit import lag_settings, make_topic, produce

pytestmark = pytest.mark.integration

PARTITIONS = 2
WAVES = 6
WAVE = 20


class RetriedCommits(Consumer):
    """Asynchronous commits land after the next commit, as a retried request does (see the module)."""

    def __init__(self, config: dict[str, Any], topic: str) -> None:
        super().__init__(config)
        self._topic = topic
        self._held: list[TopicPartition] | None = None
        self.seen: list[dict[int, int]] = []  # the broker's committed offsets after each commit sent

    def commit(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        offsets: list[TopicPartition] = kwargs["offsets"]
        if kwargs.get("asynchronous", True) and self._held is None:
            self._held = offsets  # answered with a retriable error: sent again after the next one
            return
        self._send(offsets)
        held, self._held = self._held, None
        if held is not None:
            self._send(held)

    def _send(self, offsets: list[TopicPartition]) -> None:
        super().commit(offsets=offsets, asynchronous=False)
        wanted = [TopicPartition(self._topic, p) for p in range(PARTITIONS)]
        self.seen.append({tp.partition: tp.offset for tp in self.committed(wanted, timeout=10)})


def backwards(seen: list[dict[int, int]]) -> list[str]:
    moves: list[str] = []
    for before, after in itertools.pairwise(seen):
        moves += [f"[{p}] {before[p]} -> {after[p]}" for p in before if after.get(p, -1) < before[p]]
    return moves


def test_committed_offsets_never_move_backwards_when_a_commit_is_retried(
    kafka_bootstrap: str, unique_name: str
) -> None:
    topic, group = f"{unique_name}.requests", f"{unique_name}-g"
    make_topic(kafka_bootstrap, topic, PARTITIONS)
    settings = lag_settings(kafka_bootstrap, f"{unique_name}.")
    consumer = RetriedCommits(consumer_config(settings, group), topic)

    def chain(commit: Any) -> ProcessingStep[Any]:
        return CommitOffsets(commit, 0.0)

    loop = StreamProcessor(consumer, [topic], chain, batch_size=5, shutdown_deadline=5.0, name="retried")
    thread = threading.Thread(target=loop.run, name="retried", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while len(loop.stats.assigned) < PARTITIONS:
            assert time.monotonic() < deadline, "the member never got its partitions"
            time.sleep(0.05)
        for _ in range(WAVES):  # several waves: several commits of each partition
            produce(kafka_bootstrap, topic, dict.fromkeys(range(PARTITIONS), WAVE))
            time.sleep(0.3)
        end = WAVES * WAVE
        deadline = time.monotonic() + 30
        while not consumer.seen or consumer.seen[-1] != dict.fromkeys(range(PARTITIONS), end):
            assert time.monotonic() < deadline, f"never committed to the end: {consumer.seen[-3:]}"
            time.sleep(0.05)
    finally:
        loop.stop()
        thread.join(15)
    assert len(consumer.seen) >= WAVES, consumer.seen
    assert not backwards(consumer.seen), backwards(consumer.seen)
