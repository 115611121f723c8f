"""A cooperative (incremental) rebalance while work is slow: the chain is joined within the shutdown
deadline and what did not finish is cancelled; the partitions the member keeps must consume that work
again (streams/stream_processor.py), or later commits on them would pass records never handled.

Deterministic: every batch's work waits on an event the test sets only after the second member has
joined and the first member's join has timed out; records are produced after the rebalance so that
later commits on the kept partitions would pass the dropped ones."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Message, TopicPartition

from streams.settings.librdkafka import consumer_config
from streams.steps.commit import Commit, CommitOffsets
from streams.steps.strategy import LoopThread, ProcessingStep, RunTaskInLoop
from streams.steps.stream_processor import StreamProcessor
from tests.integration.lagkit import lag_settings, make_topic, produce

pytestmark = pytest.mark.integration

PARTITIONS = 4
WAVE = 20  # records per partition, produced twice: before and after the rebalance


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_a_partial_revoke_that_cancels_slow_work_has_the_kept_partitions_consume_it_again(
    kafka_bootstrap: str, unique_name: str
) -> None:
    topic, group = f"{unique_name}.requests", f"{unique_name}-g"
    make_topic(kafka_bootstrap, topic, PARTITIONS)
    produce(kafka_bootstrap, topic, dict.fromkeys(range(PARTITIONS), WAVE))
    settings = lag_settings(kafka_bootstrap, f"{unique_name}.")
    handled: set[tuple[int, int]] = set()
    release = threading.Event()  # the slow subsystem answers only once this is set
    io = LoopThread("test-rebalance-io")

    async def slow_work(messages: list[Message]) -> None:
        while not release.is_set():
            await asyncio.sleep(0.01)
        handled.update((int(msg.partition() or 0), int(msg.offset() or 0)) for msg in messages)

    def chain(commit: Commit) -> ProcessingStep[list[Message]]:
        return RunTaskInLoop(slow_work, CommitOffsets(commit, 0.05), io, max_in_flight=64)

    def member(name: str) -> tuple[StreamProcessor, threading.Thread]:
        config = consumer_config(settings, group, **{"partition.assignment.strategy": "cooperative-sticky"})
        loop = StreamProcessor(
            Consumer(config), [topic], chain, batch_size=10, shutdown_deadline=0.5, name=name
        )
        thread = threading.Thread(target=loop.run, name=name, daemon=True)
        thread.start()
        return loop, thread

    first, first_thread = member("first")
    members = [(first, first_thread)]
    try:
        wait_for(lambda: len(first.stats.assigned) == PARTITIONS, 30, "the first member got every partition")
        # the whole first wave is in flight, on every partition, and blocked on the slow subsystem
        wait_for(lambda: first.stats.consumed == PARTITIONS * WAVE, 30, "the first wave is consumed")
        wait_for(lambda: first.stats.batches * 10 >= PARTITIONS * WAVE, 30, "the first wave is in flight")
        second, second_thread = member("second")
        members.append((second, second_thread))
        wait_for(
            lambda: len(first.stats.assigned) == len(second.stats.assigned) == PARTITIONS // 2,
            60,
            "the partitions are shared between the members",
        )
        assert not handled, "nothing has finished before the rebalance"
        produce(kafka_bootstrap, topic, dict.fromkeys(range(PARTITIONS), WAVE))
        release.set()
        probe = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": group})
        wanted = [TopicPartition(topic, p) for p in range(PARTITIONS)]

        def all_committed() -> bool:
            return all(tp.offset == 2 * WAVE for tp in probe.committed(wanted, timeout=10))

        try:
            wait_for(all_committed, 60, "every partition is committed to its end")
        finally:
            probe.close()
        expected = {(p, o) for p in range(PARTITIONS) for o in range(2 * WAVE)}
        missing = sorted(expected - handled)
        assert not missing, f"committed past {len(missing)} record(s) never handled: {missing[:10]}"
    finally:
        release.set()
        for loop, thread in members:
            loop.stop()
            thread.join(10)
        io.stop()
