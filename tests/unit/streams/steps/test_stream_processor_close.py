"""The stream processor's shutdown when a rebalance races the consumer's close.

Seen on Apache Kafka in the fault campaign (seeds 5 and 400): a SIGTERMed processor exited 1 because
librdkafka served a revoke inside ``close()`` and the closing handle answered ``assignment()`` with
``_DESTROY`` ("Broker handle destroyed for termination"), which the revoke callback raised out of
``close()``. The double below closes the way librdkafka did there; the rest of the loop's calls answer
as an idle consumer with one partition does (no records).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from streams.steps.stream_processor import StreamProcessor
from tests.unit.streams.steps.test_strategy import FakeStep

Callback = Callable[[Any, list[TopicPartition]], None]


class RacingCloseConsumer:
    """Assigns one partition on the first consume, asks the loop to stop after ``turns`` consumes, and
    on ``close()`` serves a revoke while refusing every call, as a closing librdkafka handle does."""

    def __init__(self, turns: int, close_error: KafkaException | None = None) -> None:
        self.turns = turns
        self.close_error = close_error
        self.closing = False
        self.closed = False
        self.loop: StreamProcessor | None = None
        self.owned: list[TopicPartition] = []
        self.on_assign: Callback | None = None
        self.on_revoke: Callback | None = None

    def _refuse_when_closing(self) -> None:
        if self.closing:
            raise KafkaException(KafkaError(KafkaError._DESTROY))

    def subscribe(
        self, topics: list[str], on_assign: Callback, on_revoke: Callback, on_lost: Callback
    ) -> None:
        self.on_assign, self.on_revoke = on_assign, on_revoke

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        if not self.owned and self.on_assign is not None:
            self.owned = [TopicPartition("requests", 0)]
            self.on_assign(self, list(self.owned))
        self.turns -= 1
        if self.turns <= 0 and self.loop is not None:
            self.loop.stop()
        return []

    def assignment(self) -> list[TopicPartition]:
        self._refuse_when_closing()
        return list(self.owned)

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        self._refuse_when_closing()
        return [TopicPartition(tp.topic, tp.partition, 0) for tp in partitions]

    def seek(self, partition: TopicPartition) -> None:
        self._refuse_when_closing()

    def pause(self, partitions: list[TopicPartition]) -> None:
        self._refuse_when_closing()

    def resume(self, partitions: list[TopicPartition]) -> None:
        self._refuse_when_closing()

    def close(self) -> None:
        self.closing = True
        if self.on_revoke is not None and self.owned:
            self.on_revoke(self, list(self.owned))  # an exception here leaves close(), as in confluent-kafka
        self.closed = True
        if self.close_error is not None:
            raise self.close_error


def _run(consumer: RacingCloseConsumer) -> tuple[StreamProcessor, list[FakeStep]]:
    chains: list[FakeStep] = []

    def factory(commit: Any) -> FakeStep:
        chains.append(FakeStep())
        return chains[-1]

    loop = StreamProcessor(consumer, ["requests"], factory, batch_size=10, shutdown_deadline=1.0)  # type: ignore[arg-type]
    consumer.loop = loop
    loop.run()
    return loop, chains


def test_a_revoke_served_inside_close_does_not_fail_the_shutdown() -> None:
    consumer = RacingCloseConsumer(turns=3)
    loop, chains = _run(consumer)  # before the fix: KafkaException(_DESTROY) out of run()
    assert consumer.closed
    assert chains and chains[0].closed and chains[0].joins, "the chain is joined before the consumer closes"
    assert loop.stats.rebalances == 1


def test_a_close_that_fails_is_logged_and_the_loop_still_returns(caplog: pytest.LogCaptureFixture) -> None:
    consumer = RacingCloseConsumer(turns=2, close_error=KafkaException(KafkaError(KafkaError._TRANSPORT)))
    with caplog.at_level(logging.WARNING, logger="streams.steps.stream_processor"):
        _run(consumer)
    assert any("closing the consumer" in record.getMessage() for record in caplog.records)
