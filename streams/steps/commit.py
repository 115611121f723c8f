"""The last step of every chain: commit offsets once everything a batch produced is delivered.

Batches arrive in consume order. Each waits here until its delivery trackers are done; then its
offsets join the pending commit. Commits go out at most every ``interval`` seconds and on ``join``
(shutdown, rebalance), one at a time and synchronously, as Arroyo does: a commit returns only once
its request is done, librdkafka's own retries included. Asynchronous commits could land out of order:
librdkafka sends a commit the broker answered with a retriable error (REQUEST_TIMED_OUT, a coordinator
moving or loading) again after a backoff, after the commit that followed it, and the group's committed
offset moved backwards (tests/integration/streams/steps/test_commit_order.py). A commit the broker
refuses leaves its offsets pending for the next try, an ``interval`` later (a coordinator moving to
another broker does it: the 3-broker rolling-restart drill). A batch whose deliveries failed stops
the consumer: its offsets are never committed, so the records are consumed again after a restart.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable

from confluent_kafka import KafkaException

from streams.steps.faults import fault_point
from streams.steps.strategy import Batch, MessageRejected, Partition

log = logging.getLogger(__name__)

# Commits ``offsets`` (the next offset per partition) for the chain's consumer and returns once the
# broker has them; raises KafkaException when it refuses. The stream processor hands it to the chain.
Commit = Callable[[dict[Partition, int]], None]


class DeliveryFailed(RuntimeError):
    """Records a batch produced were not delivered; its offsets must not be committed."""


def take_delivered(waiting: deque[Batch[object]], ready: dict[Partition, int]) -> None:
    """Move the offsets of the leading fully delivered batches from ``waiting`` into ``ready``.

    A batch with a failed delivery stays at the head for good and raises DeliveryFailed every time:
    nothing at or after it is ever committed, so its records are consumed again after a restart.
    """
    while waiting and all(t.done for t in waiting[0].trackers):
        batch = waiting[0]
        if any(t.failed for t in batch.trackers):
            errors = [err for t in batch.trackers for err in t.first_errors]
            raise DeliveryFailed(
                f"{sum(t.failed for t in batch.trackers)} record(s) not delivered: {'; '.join(errors[:3])}"
            )
        waiting.popleft()
        ready.update(batch.offsets)


class CommitOffsets:
    """Commit step; ``serve_deliveries`` (the producer's poll) lets delivery callbacks run."""

    def __init__(
        self,
        commit: Commit,
        interval: float,
        serve_deliveries: Callable[[float], int] | None = None,
        max_waiting: int = 64,
        on_commit: Callable[[dict[Partition, int]], None] | None = None,
    ) -> None:
        self._commit_offsets = commit
        self._interval = interval
        self._serve = serve_deliveries
        self._max_waiting = max_waiting
        self._on_commit = on_commit
        self._waiting: deque[Batch[object]] = deque()
        self._ready: dict[Partition, int] = {}
        self._last_commit = time.monotonic()
        self.committed: dict[Partition, int] = {}

    def submit(self, batch: Batch[object]) -> None:
        if len(self._waiting) >= self._max_waiting:
            self._settle()
            if len(self._waiting) >= self._max_waiting:
                raise MessageRejected
        self._waiting.append(batch)

    def _settle(self) -> None:
        if self._serve is not None and self._waiting and self._waiting[0].trackers:
            self._serve(0)
        take_delivered(self._waiting, self._ready)

    def poll(self) -> None:
        self._settle()
        if self._ready and time.monotonic() - self._last_commit >= self._interval:
            self._commit()

    def _commit(self) -> None:
        fault_point("before_commit")
        self._last_commit = time.monotonic()  # a refused commit is tried again an interval later
        try:
            self._commit_offsets(dict(self._ready))
        except KafkaException as exc:
            log.warning("commit of %d partition(s) failed, trying again: %s", len(self._ready), exc)
            return
        self.committed.update(self._ready)
        if self._on_commit is not None:
            self._on_commit(dict(self._ready))
        self._ready.clear()

    def join(self, timeout: float | None = None) -> None:
        try:
            self._drain(time.monotonic() + (timeout if timeout is not None else 3600.0))
        finally:
            if self._ready:
                self._commit()

    def _drain(self, deadline: float) -> None:
        while self._waiting and time.monotonic() < deadline:
            self._settle()
            if self._waiting and self._serve is not None:
                self._serve(0.05)
            elif self._waiting:
                time.sleep(0.01)
        self._settle()
        if self._waiting:
            log.warning(
                "%d batch(es) still awaiting delivery at join; their offsets stay uncommitted",
                len(self._waiting),
            )

    def close(self) -> None:
        pass

    def terminate(self) -> None:
        self._waiting.clear()
        self._ready.clear()
