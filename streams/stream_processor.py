"""The consume loop every kcollect service runs: consume a batch, submit it to the chain, poll the chain.

- Backpressure: when the chain raises MessageRejected the assigned partitions are paused and the
  same batch is offered again on the next turns; the loop keeps calling ``consume`` (short timeout)
  so the consumer stays in its group without spinning the CPU. Partitions resume once it is taken.
- Rebalance: on revoke the chain is closed and joined (finishing and committing what it can within
  the deadline) and a batch still waiting is dropped: its offsets were never committed, so the
  partition's next owner consumes it again. On assign a fresh chain is built.
- Shutdown: ``stop()`` (SIGTERM, Ctrl-C) ends the loop; the chain is joined within the shutdown
  deadline and the consumer closed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from streams.strategy import Batch, MessageRejected, ProcessingStep, offsets_of

log = logging.getLogger(__name__)

ChainFactory = Callable[[Consumer], ProcessingStep[list[Message]]]


@dataclass
class LoopStats:
    """What the loop saw, for summaries and metrics."""

    consumed: int = 0
    batches: int = 0
    paused_seconds: float = 0.0
    rebalances: int = 0
    consumer_errors: int = 0
    first_batch_at: float = 0.0  # epoch seconds a non-empty batch was first taken by the chain
    last_batch_at: float = 0.0
    assigned: list[tuple[str, int]] = field(default_factory=list)


class StreamProcessor:
    """Runs one consumer and its processing chain until ``stop()``."""

    def __init__(
        self,
        consumer: Consumer,
        topics: list[str],
        chain_factory: ChainFactory,
        *,
        batch_size: int,
        shutdown_deadline: float,
        on_assigned: Callable[[list[tuple[str, int]]], None] | None = None,
    ) -> None:
        self._consumer = consumer
        self._topics = topics
        self._factory = chain_factory
        self._batch_size = batch_size
        self._deadline = shutdown_deadline
        self._on_assigned = on_assigned
        self._chain: ProcessingStep[list[Message]] | None = None
        self._pending: Batch[list[Message]] | None = None
        self._paused_at: float | None = None
        self._running = False
        self.stats = LoopStats()

    def stop(self) -> None:
        """Ask the loop to finish (safe from a signal handler)."""
        self._running = False

    def run(self) -> LoopStats:
        self._consumer.subscribe(
            self._topics, on_assign=self._assign, on_revoke=self._revoke, on_lost=self._lost
        )
        self._running = True
        try:
            while self._running:
                self._turn()
        finally:
            self._shutdown()
        return self.stats

    def _turn(self) -> None:
        if self._pending is None:
            messages = self._consume(0.05 if self._chain is None else 0.01)
            if messages:
                self._pending = Batch(messages, offsets_of(messages))
        else:
            self._consume(0.05)  # paused: serves the group protocol, returns nothing
        if self._chain is None:
            return
        self._chain.poll()
        if self._pending is not None:
            self._offer(self._chain, self._pending)

    def _consume(self, timeout: float) -> list[Message]:
        messages = self._consumer.consume(self._batch_size, timeout)
        if not messages:
            return []
        good = [m for m in messages if m.error() is None]
        if len(good) != len(messages):
            for msg in messages:
                error = msg.error()
                if error is not None and error.code() != KafkaError._PARTITION_EOF:
                    self.stats.consumer_errors += 1
                    log.warning("consumer error: %s", error)
        self.stats.consumed += len(good)
        return good

    def _offer(self, chain: ProcessingStep[list[Message]], batch: Batch[list[Message]]) -> None:
        try:
            chain.submit(batch)
        except MessageRejected:
            if self._paused_at is None:
                self._pause()
            return
        self.stats.batches += 1
        self.stats.last_batch_at = time.time()
        self.stats.first_batch_at = self.stats.first_batch_at or self.stats.last_batch_at
        self._pending = None
        if self._paused_at is not None:
            self._resume()

    def _pause(self) -> None:
        self._consumer.pause(self._consumer.assignment())
        self._paused_at = time.monotonic()
        log.debug("paused %d partition(s): the chain is full", len(self._consumer.assignment()))

    def _resume(self) -> None:
        self._consumer.resume(self._consumer.assignment())
        if self._paused_at is not None:
            self.stats.paused_seconds += time.monotonic() - self._paused_at
        self._paused_at = None

    def _assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.stats.rebalances += 1
        self.stats.assigned = [(tp.topic, tp.partition) for tp in consumer.assignment()] or [
            (tp.topic, tp.partition) for tp in partitions
        ]
        log.info("assigned %d partition(s)", len(partitions))
        if self._chain is None:
            self._chain = self._factory(consumer)
        if self._on_assigned is not None:
            self._on_assigned(self.stats.assigned)

    def _revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("revoking %d partition(s): finishing in-flight work", len(partitions))
        self._finish_chain()

    def _lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.warning("lost %d partition(s): dropping in-flight work uncommitted", len(partitions))
        if self._chain is not None:
            self._chain.terminate()
        self._chain = None
        self._pending = None
        self._paused_at = None

    def _finish_chain(self) -> None:
        if self._chain is not None:
            self._chain.close()
            self._chain.join(self._deadline)
        self._chain = None
        self._pending = None
        if self._paused_at is not None:
            self._resume()

    def _shutdown(self) -> None:
        try:
            self._finish_chain()
        finally:
            self._consumer.close()
