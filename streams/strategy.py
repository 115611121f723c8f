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
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from confluent_kafka import Message

from streams.producer import DeliveryTracker

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
    for msg in messages:
        offsets[(str(msg.topic()), int(msg.partition() or 0))] = int(msg.offset() or 0) + 1
    return offsets


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
        if self._carry is not None:
            try:
                self.next_step.submit(self._carry)
            except MessageRejected:
                return False
            self._carry = None
        return True

    def submit(self, batch: Batch[T]) -> None:
        if not self._push_carry():
            raise MessageRejected
        self._carry = self._transform(batch)
        self._push_carry()

    def poll(self) -> None:
        self._push_carry()
        self.next_step.poll()

    def join(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._push_carry():
            if deadline is not None and time.monotonic() >= deadline:
                break
            self.next_step.poll()
            time.sleep(0.01)
        self.next_step.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        self.next_step.close()

    def terminate(self) -> None:
        self._carry = None
        self.next_step.terminate()
