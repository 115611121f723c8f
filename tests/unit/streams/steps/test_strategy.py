"""TransformStep carry semantics, with a fake next step of our own (no Kafka)."""

from __future__ import annotations

import pytest

from streams.kafka.producer import DeliveryTracker
from streams.steps.strategy import Batch, MessageRejected, TransformStep

P = ("requests", 0)


class FakeStep:
    """Records what it receives; rejects while ``full`` is True."""

    def __init__(self) -> None:
        self.full = False
        self.received: list[Batch[list[int]]] = []
        self.submits = 0
        self.polls = 0
        self.joins: list[float | None] = []
        self.closed = False
        self.terminated = False

    def submit(self, batch: Batch[list[int]]) -> None:
        self.submits += 1
        if self.full:
            raise MessageRejected
        self.received.append(batch)

    def poll(self) -> None:
        self.polls += 1

    def join(self, timeout: float | None = None) -> None:
        self.joins.append(timeout)

    def close(self) -> None:
        self.closed = True

    def terminate(self) -> None:
        self.terminated = True


def batch(*values: int, offset: int = 0) -> Batch[list[int]]:
    return Batch(list(values), {P: offset})


class Doubler:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, b: Batch[list[int]]) -> Batch[list[int]]:
        self.calls += 1
        return b.replace([2 * v for v in b.payload])


def make() -> tuple[TransformStep[list[int], list[int]], FakeStep, Doubler]:
    nxt = FakeStep()
    transform = Doubler()
    return TransformStep(transform, nxt), nxt, transform


def test_batch_replace_keeps_offsets_and_trackers() -> None:
    tracker = DeliveryTracker()
    original = Batch([1], {P: 5}, [tracker])
    replaced = original.replace("x")
    assert replaced.payload == "x"
    assert replaced.offsets == {P: 5}
    assert replaced.trackers == [tracker]


def test_submit_passes_transformed_batch() -> None:
    step, nxt, _ = make()
    step.submit(batch(1, 2, offset=3))
    assert [b.payload for b in nxt.received] == [[2, 4]]
    assert nxt.received[0].offsets == {P: 3}


def test_rejected_input_counts_as_accepted_and_is_carried() -> None:
    step, nxt, transform = make()
    nxt.full = True
    step.submit(batch(1))  # no exception: the input is accepted, its transformed batch is carried
    assert transform.calls == 1
    assert nxt.received == []
    with pytest.raises(MessageRejected):
        step.submit(batch(2))
    assert transform.calls == 1  # the refused batch was not transformed
    with pytest.raises(MessageRejected):
        step.submit(batch(2))
    nxt.full = False
    step.submit(batch(2))
    assert [b.payload for b in nxt.received] == [[2], [4]]
    assert transform.calls == 2


def test_poll_pushes_the_carry() -> None:
    step, nxt, _ = make()
    nxt.full = True
    step.submit(batch(5))
    step.poll()
    assert nxt.received == []
    assert nxt.polls == 1
    nxt.full = False
    step.poll()
    assert [b.payload for b in nxt.received] == [[10]]
    assert nxt.polls == 2
    step.poll()
    assert len(nxt.received) == 1  # carried once, not twice
    step.submit(batch(6))
    assert [b.payload for b in nxt.received] == [[10], [12]]


def test_join_hands_on_the_carry() -> None:
    step, nxt, _ = make()
    nxt.full = True
    step.submit(batch(1))
    nxt.full = False
    step.join(1.0)
    assert [b.payload for b in nxt.received] == [[2]]
    assert len(nxt.joins) == 1
    assert nxt.joins[0] is not None and 0.0 < nxt.joins[0] <= 1.0


def test_join_without_timeout() -> None:
    step, nxt, _ = make()
    step.join()
    assert nxt.joins == [None]


def test_join_gives_up_at_the_timeout() -> None:
    step, nxt, _ = make()
    nxt.full = True
    step.submit(batch(1))
    step.join(0.03)
    assert nxt.received == []
    assert nxt.joins == [0.0]
    assert nxt.polls >= 1
    with pytest.raises(MessageRejected):  # still carried
        step.submit(batch(2))


def test_terminate_drops_the_carry() -> None:
    step, nxt, _ = make()
    nxt.full = True
    step.submit(batch(1))
    step.terminate()
    assert nxt.terminated
    nxt.full = False
    step.submit(batch(3))
    assert [b.payload for b in nxt.received] == [[6]]


def test_close_closes_next() -> None:
    step, nxt, _ = make()
    step.close()
    assert nxt.closed
