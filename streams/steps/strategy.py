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


class ForwardingStep(Generic[T2]):
    """The base of every step that has a next step: it holds what the next step refused and hands it on.

    ``hand_on(batch)`` queues ``batch`` behind anything held and offers all of it to the next step, in
    order; it returns False while the next step refuses (the rest stays held). ``poll`` moves finished
    work along (``_advance``: by default just ``hand_on()``) and polls the next step. ``join`` repeats
    that until the step is empty (``_finished``) or the timeout passes, waiting ``_wait`` between turns,
    lets the step give up what is unfinished (``_give_up``), then joins the next step with the time
    left. ``close`` passes down the chain; ``terminate`` drops what is held and passes down.
    """

    def __init__(self, next_step: ProcessingStep[T2]) -> None:
        self.next_step = next_step
        self._held: deque[Batch[T2]] = deque()

    def hand_on(self, batch: Batch[T2] | None = None) -> bool:
        """Queue ``batch`` (when given) and offer everything held; True once nothing is held."""
        if batch is not None:
            self._held.append(batch)
        while self._held:
            try:
                self.next_step.submit(self._held[0])
            except MessageRejected:
                return False
            self._handed(self._held.popleft())
        return True

    def _handed(self, batch: Batch[T2]) -> None:
        """Called for each batch the next step took."""

    def _advance(self) -> None:
        """Move finished work on (a step with work in progress hands its finished part on here)."""
        self.hand_on()

    def _finished(self) -> bool:
        """Nothing left to hand on (``join`` stops waiting)."""
        return not self._held

    def _wait(self, seconds: float) -> None:
        """Between two turns of ``join``: wait for work in progress, at most ``seconds``."""
        time.sleep(min(0.01, seconds))

    def _give_up(self) -> None:
        """``join`` timed out: drop the work still in progress (its offsets stay uncommitted)."""

    def poll(self) -> None:
        self._advance()
        self.next_step.poll()

    def join(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout

        def left() -> float:
            return 3600.0 if deadline is None else max(0.0, deadline - time.monotonic())

        while True:
            self._advance()
            if self._finished() or left() <= 0.0:
                break
            self.next_step.poll()
            self._wait(left())
        self._give_up()
        self.next_step.join(None if deadline is None else left())

    def close(self) -> None:
        self.next_step.close()

    def terminate(self) -> None:
        self._held.clear()
        self.next_step.terminate()


class TransformStep(ForwardingStep[T2], Generic[T, T2]):
    """A pure step: ``transform`` a batch's payload and hand the result to ``next_step``.

    When the next step rejects, the transformed batch is held (the input counts as accepted) and
    handed on by a later ``poll``/``submit``; only then are new batches refused.
    """

    def __init__(self, transform: Callable[[Batch[T]], Batch[T2]], next_step: ProcessingStep[T2]) -> None:
        super().__init__(next_step)
        self._transform = transform

    def submit(self, batch: Batch[T]) -> None:
        if not self.hand_on():
            raise MessageRejected
        self.hand_on(self._transform(batch))


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


class RunTaskInLoop(ForwardingStep[T2], Generic[T, T2]):
    """Run ``task(payload)`` for each batch on ``loop``; forward results in submit order.

    Full (``max_in_flight`` batches running, or a finished one the next step refused) means
    ``MessageRejected``. A task that raised re-raises here, in ``poll``, stopping the consumer.
    ``join`` cancels the tasks not finished by its deadline: their offsets stay uncommitted.
    """

    def __init__(
        self,
        task: Callable[[T], Coroutine[Any, Any, T2]],
        next_step: ProcessingStep[T2],
        loop: LoopThread,
        max_in_flight: int,
        on_in_flight: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__(next_step)
        self._task = task
        self._loop = loop
        self._max = max_in_flight
        self._on_in_flight = on_in_flight
        self._queue: deque[tuple[Batch[T], concurrent.futures.Future[T2]]] = deque()

    def _advance(self) -> None:
        """Hand on finished work in order, until the next step refuses."""
        if not self.hand_on():
            return
        while self._queue and self._queue[0][1].done():
            batch, future = self._queue.popleft()
            self._report()
            if not self.hand_on(batch.replace(future.result())):
                return

    def _report(self) -> None:
        if self._on_in_flight is not None:
            self._on_in_flight(len(self._queue))

    def submit(self, batch: Batch[T]) -> None:
        self._advance()
        if len(self._queue) >= self._max or self._held:
            raise MessageRejected
        self._queue.append((batch, self._loop.submit(self._task(batch.payload))))
        self._report()

    def _finished(self) -> bool:
        return not self._queue and not self._held

    def _wait(self, seconds: float) -> None:
        if self._queue and not self._queue[0][1].done():
            concurrent.futures.wait([self._queue[0][1]], timeout=min(0.01, seconds))
        else:
            time.sleep(min(0.01, seconds))

    def _give_up(self) -> None:
        for _, future in self._queue:
            future.cancel()
        self._queue.clear()
        self._report()

    def terminate(self) -> None:
        self._give_up()
        super().terminate()
