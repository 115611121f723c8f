"""Records read before a rebalance and returned after its callback are not this member's to handle.

librdkafka serves rebalance callbacks inside ``consume``: the records that call had already taken from
its queue are returned after the revoke (or lost) callback unless the partition's version barrier,
sent from the broker thread, reaches the queue before the call returns. On a busy machine, or in a
process thawed after a SIGSTOP (the campaign's seed 195), it does not: the member then handled records
of partitions it no longer owned and committed their offsets with its current generation, which the
broker accepts, so the committed offset of another member's partition moved backwards (297 -> 100).

``LateBarrier`` is a real consumer on a real broker whose ``consume`` returns records the way
librdkafka does when the barrier is late: once armed, what it reads is held back (taken from the
queue, as a call collects records before it meets the rebalance op) and returned by the call during
which a revoke or lost callback ran, after that callback. Deterministic: everything of the first wave
is held until a second member joins; the second wave is produced after the rebalance.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Consumer, Message, TopicPartition

from streams.settings.librdkafka import consumer_config
from streams.steps.commit import Commit, CommitOffsets
from streams.steps.strategy import LoopThread, Partition, ProcessingStep, RunTaskInLoop
from streams.steps.stream_processor import StreamProcessor
from tests.integration.lagkit import lag_settings, make_topic, produce

pytestmark = pytest.mark.integration

PARTITIONS = 4
WAVE = 30
Rebalanced = Callable[[Consumer, list[TopicPartition]], None]


class LateBarrier(Consumer):
    """A consumer whose held-back records come back in the call that ran a revoke or lost callback.

    ``until``: ``revoke``: that call ends as it would; ``assign``: it also lasts until the new
    assignment's callback has run (one librdkafka call whose loop met the revoke, then the
    assignment: possible when the group rebalances within the call's timeout); ``records``: and
    until the new assignment's first records are read too."""

    def __init__(self, config: dict[str, Any], until: str = "revoke") -> None:
        super().__init__(config)
        self.until = until
        self.armed = False
        self.held: list[Message] = []
        self.released = 0
        self._revoked = False
        self._assigned = False

    def subscribe(self, topics: list[str], **callbacks: Any) -> None:
        def noting(name: str, callback: Rebalanced) -> Rebalanced:
            def call(consumer: Consumer, partitions: list[TopicPartition]) -> None:
                if name == "on_assign":
                    self._assigned = True
                else:
                    self._revoked = True
                callback(consumer, partitions)

            return call

        for name in ("on_assign", "on_revoke", "on_lost"):
            if callbacks.get(name) is not None:
                callbacks[name] = noting(name, callbacks[name])
        super().subscribe(topics, **callbacks)

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]:
        self._revoked = self._assigned = False
        messages = super().consume(num_messages, timeout)
        if self._revoked and self.held:
            held, self.held, self.armed = self.held, [], False
            deadline = time.monotonic() + 30
            while self.until != "revoke" and time.monotonic() < deadline:
                if self._assigned and (self.until == "assign" or messages):
                    break
                messages += super().consume(num_messages, 0.02)
            assert self.until == "revoke" or self._assigned, "the new assignment never came"
            self.released = len(held)
            return held + messages
        if self.armed:
            self.held.extend(messages)
            return []
        return messages


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.mark.parametrize("until", ["revoke", "assign", "records"])
def test_records_read_before_a_revoke_are_neither_handled_nor_committed_by_the_old_owner(
    kafka_bootstrap: str, unique_name: str, until: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="streams.steps.stream_processor")
    topic, group = f"{unique_name}.requests", f"{unique_name}-g"
    make_topic(kafka_bootstrap, topic, PARTITIONS)
    settings = lag_settings(kafka_bootstrap, f"{unique_name}.")
    config = consumer_config(settings, group, **{"partition.assignment.strategy": "range"})
    lock = threading.Lock()
    handled: list[tuple[str, int, int]] = []  # (member, partition, offset)
    foreign: list[str] = []  # commits of partitions the committing member did not own
    io = LoopThread("test-stale-io")

    def member(name: str, consumer: Consumer) -> tuple[StreamProcessor, threading.Thread]:
        async def work(messages: list[Message]) -> None:
            await asyncio.sleep(0)
            with lock:
                handled.extend((name, int(m.partition() or 0), int(m.offset() or 0)) for m in messages)

        def chain(commit: Commit) -> ProcessingStep[list[Message]]:
            def checked(offsets: dict[Partition, int]) -> None:
                owned = {(tp.topic, tp.partition) for tp in consumer.assignment()}
                if set(offsets) - owned:
                    foreign.append(f"{name} committed {sorted(offsets.items())} owning {sorted(owned)}")
                commit(offsets)

            return RunTaskInLoop(work, CommitOffsets(checked, 0.05), io, max_in_flight=4)

        loop = StreamProcessor(consumer, [topic], chain, batch_size=10, shutdown_deadline=5.0, name=name)
        thread = threading.Thread(target=loop.run, name=name, daemon=True)
        thread.start()
        return loop, thread

    late = LateBarrier(config, until)
    first, first_thread = member("first", late)
    members = [(first, first_thread)]
    try:
        wait_for(lambda: len(first.stats.assigned) == PARTITIONS, 30, "the first member owns every partition")
        late.armed = True
        produce(kafka_bootstrap, topic, dict.fromkeys(range(PARTITIONS), WAVE))
        wait_for(lambda: len(late.held) == PARTITIONS * WAVE, 30, "the first wave is read and held back")
        second, second_thread = member("second", Consumer(config))
        members.append((second, second_thread))
        wait_for(
            lambda: bool(first.stats.assigned) and bool(second.stats.assigned) and late.released > 0,
            60,
            "the partitions are shared and the held records came back after the revoke",
        )
        produce(kafka_bootstrap, topic, dict.fromkeys(range(PARTITIONS), WAVE))
        probe = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": group})
        wanted = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        try:
            wait_for(
                lambda: all(tp.offset == 2 * WAVE for tp in probe.committed(wanted, timeout=10)),
                60,
                "every partition is committed to its end",
            )
            time.sleep(1.0)  # anything the old owner would still commit has gone out by now
            final = {tp.partition: tp.offset for tp in probe.committed(wanted, timeout=10)}
        finally:
            probe.close()
        seconds = {p for t, p in second.stats.assigned if t == topic}
        with lock:
            by_first = sorted((p, o) for who, p, o in handled if who == "first" and p in seconds)
            seen = {(p, o) for _, p, o in handled}
        assert not foreign, f"a member committed offsets of partitions it did not own: {foreign[:3]}"
        assert not by_first, f"the old owner handled {len(by_first)} record(s) of moved partitions"
        assert final == dict.fromkeys(range(PARTITIONS), 2 * WAVE), final
        missing = {(p, o) for p in range(PARTITIONS) for o in range(2 * WAVE)} - seen
        assert not missing, f"{len(missing)} record(s) never handled: {sorted(missing)[:10]}"
        if until != "revoke":  # the partitions it owns again are read again from their committed offset
            assert "assigned again, consuming from the committed offset" in caplog.text
    finally:
        for loop, thread in members:
            loop.stop()
            thread.join(10)
        io.stop()
