"""The shape of every consumer: a chain of small steps, each taking a *batch* of records.

Modelled on Sentry Arroyo's ProcessingStrategy, with one change: a step receives one ``consume(n)``
worth of records at a time, so per-record Python overhead is paid once per batch, not once per step.

- ``submit(batch)`` hands work to the step. A step that is full raises ``MessageRejected``; the
  stream processor then pauses its partitions, keeps polling, and submits the same batch again later.
- ``poll()`` moves finished work along to the next step. It must not block.
- ``join(timeout)`` waits for all submitted work to finish (shutdown and rebalance), at most ``timeout``.
- ``close()`` says no more batches will come; ``terminate()`` drops everything at once.

A batch carries its Kafka offsets (the next offset to commit per topic partition) and the delivery
trackers of what the steps produced for it; the last step commits the offsets only when every
tracker reports delivery.

``RunTaskInLoop`` is the I/O step (Arroyo's RunTaskInThreads, on asyncio): each batch becomes a
coroutine on one event loop in a worker thread, at most ``max_in_flight`` at once, and the results are
handed on in submit order, so commits stay ordered.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from confluent_kafka import Message

from streams.kafka.producer import DeliveryTracker

T = TypeVar("T")
T2 = TypeVar("T2")

Partition = tuple[str, int]


class MessageRejected(Exception):
    """A step is full: try the same batch again later (the caller pauses its partitions meanwhile)."""


@dataclass
class Batch(Generic[T]):
    """A payload with the offsets it stands for and the deliveries it is waiting on."""

    payload: T
    offsets: dict[Partition, int]
    trackers: list[DeliveryTracker] = field(default_factory=list)

    def replace(self, payload: T2) -> Batch[T2]:
        return Batch(payload, self.offsets, self.trackers)


class ProcessingStep(Protocol[T]):
    """One step of a consumer chain (see the module docstring for the contract)."""

    def submit(self, batch: Batch[T]) -> None: ...

    def poll(self) -> None: ...

    def join(self, timeout: float | None = None) -> None: ...

    def close(self) -> None: ...

    def terminate(self) -> None: ...


def offsets_of(messages: list[Message]) -> dict[Partition, int]:
    """The next offset to commit per partition after ``messages`` (consumed in order)."""
    offsets: dict[Partition, int] = {}
    for msg in reversed(messages):  # the last record of each partition wins; earlier ones are skipped
        key = (msg.topic(), msg.partition())
        if key not in offsets:
            offsets[key] = msg.offset() + 1  # type: ignore[index,operator]  # set on consumed records
    return offsets


def hand_on(next_step: ProcessingStep[T], batch: Batch[T] | None) -> Batch[T] | None:
    """Offer ``batch`` to ``next_step``: None once taken (or when there was none), else the batch, held."""
    if batch is None:
        return None
    try:
        next_step.submit(batch)
    except MessageRejected:
        return batch
    return None


def join_after(push: Callable[[], bool], next_step: ProcessingStep[Any], timeout: float | None) -> None:
    """A step's join: offer its held work (``push`` is True once all is taken) until the deadline, then
    join ``next_step`` with the time left."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while not push() and (deadline is None or time.monotonic() < deadline):
        next_step.poll()
        time.sleep(0.01)
    next_step.join(None if deadline is None else max(0.0, deadline - time.monotonic()))


class TransformStep(Generic[T, T2]):
    """A pure step: ``transform`` a batch's payload and hand the result to ``next_step``.

    When the next step rejects, the transformed batch is kept (the input counts as accepted) and
    handed on by a later ``poll``/``submit``; only then are new batches refused.
    """

    def __init__(self, transform: Callable[[Batch[T]], Batch[T2]], next_step: ProcessingStep[T2]) -> None:
        self._transform = transform
        self.next_step = next_step
        self._carry: Batch[T2] | None = None

    def _push_carry(self) -> bool:
        self._carry = hand_on(self.next_step, self._carry)
        return self._carry is None

    def submit(self, batch: Batch[T]) -> None:
        if not self._push_carry():
            raise MessageRejected
        self._carry = self._transform(batch)
        self._push_carry()

    def poll(self) -> None:
        self._push_carry()
        self.next_step.poll()

    def join(self, timeout: float | None = None) -> None:
        join_after(self._push_carry, self.next_step, timeout)

    def close(self) -> None:
        self.next_step.close()

    def terminate(self) -> None:
        self._carry = None
        self.next_step.terminate()


class LoopThread:
    """One asyncio event loop running in a daemon thread, for the whole life of a service."""

    def __init__(self, name: str = "kcollect-io") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self, timeout: float = 5.0) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)


class RunTaskInLoop(Generic[T, T2]):
    """Run ``task(payload)`` for each batch on ``loop``; forward results in submit order.

    Full (``max_in_flight`` batches running, or a finished one the next step refused) means
    ``MessageRejected``. A task that raised re-raises here, in ``poll``, stopping the consumer.
    """

    def __init__(
        self,
        task: Callable[[T], Coroutine[Any, Any, T2]],
        next_step: ProcessingStep[T2],
        loop: LoopThread,
        max_in_flight: int,
        on_in_flight: Callable[[int], None] | None = None,
    ) -> None:
        self._task = task
        self.next_step = next_step
        self._loop = loop
        self._max = max_in_flight
        self._on_in_flight = on_in_flight
        self._queue: deque[tuple[Batch[T], concurrent.futures.Future[T2]]] = deque()
        self._carry: Batch[T2] | None = None

    def _forward(self) -> bool:
        """Hand on finished work in order; False when the next step is full."""
        self._carry = hand_on(self.next_step, self._carry)
        while self._carry is None and self._queue and self._queue[0][1].done():
            batch, future = self._queue.popleft()
            self._report()
            self._carry = hand_on(self.next_step, batch.replace(future.result()))
        return self._carry is None

    def _report(self) -> None:
        if self._on_in_flight is not None:
            self._on_in_flight(len(self._queue))

    def submit(self, batch: Batch[T]) -> None:
        self._forward()
        if len(self._queue) >= self._max or self._carry is not None:
            raise MessageRejected
        self._queue.append((batch, self._loop.submit(self._task(batch.payload))))
        self._report()

    def poll(self) -> None:
        self._forward()
        self.next_step.poll()

    def join(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._queue or self._carry is not None:
            if deadline is not None and time.monotonic() >= deadline:
                break
            self._forward()
            self.next_step.poll()
            if self._queue and not self._queue[0][1].done():
                concurrent.futures.wait([self._queue[0][1]], timeout=0.01)
            elif self._carry is not None:
                time.sleep(0.01)
        for _, future in self._queue:  # not finished in time: dropped, their offsets stay uncommitted
            future.cancel()
        self._queue.clear()
        self._report()
        self.next_step.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        self.next_step.close()

    def terminate(self) -> None:
        for _, future in self._queue:
            future.cancel()
        self._queue.clear()
        self._carry = None
        self._report()
        self.next_step.terminate()
