"""The commit step's ordering rule: offsets move to 'ready' only in order, and never past a failure."""

from __future__ import annotations

from collections import deque

import pytest
from confluent_kafka import KafkaError, KafkaException

from streams.kafka.producer import DeliveryTracker
from streams.steps.commit import CommitOffsets, DeliveryFailed, take_delivered
from streams.steps.strategy import Batch


def batch(offset: int, pending: int = 0, failed: int = 0) -> Batch[object]:
    tracker = DeliveryTracker(pending=pending, failed=failed, first_errors=["t: boom"] if failed else [])
    return Batch(None, {("t", 0): offset}, [tracker])


def test_delivered_batches_are_taken_in_order_up_to_the_first_pending_one() -> None:
    waiting = deque([batch(10), batch(20), batch(30, pending=1), batch(40)])
    ready: dict[tuple[str, int], int] = {}
    take_delivered(waiting, ready)
    assert ready == {("t", 0): 20}
    assert len(waiting) == 2


def test_a_failed_batch_blocks_every_later_offset_for_good() -> None:
    waiting = deque([batch(10), batch(20, failed=1), batch(30)])
    ready: dict[tuple[str, int], int] = {}
    with pytest.raises(DeliveryFailed, match="1 record"):
        take_delivered(waiting, ready)
    assert ready == {("t", 0): 10}
    with pytest.raises(DeliveryFailed):
        take_delivered(waiting, ready)
    assert ready == {("t", 0): 10}
    assert len(waiting) == 2


class Broker:
    """The consumer's commit as the commit step sees it: the first ``refuse`` commits raise (a
    coordinator moving: librdkafka gave up on its retries); the others land."""

    def __init__(self, refuse: int = 0) -> None:
        self.refuse = refuse
        self.offsets: dict[tuple[str, int], int] = {}
        self.calls: list[dict[tuple[str, int], int]] = []

    def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        self.calls.append(dict(offsets))
        if self.refuse:
            self.refuse -= 1
            raise KafkaException(KafkaError(KafkaError.NOT_COORDINATOR))
        for partition, offset in offsets.items():
            assert offset >= self.offsets.get(partition, 0), "committed offsets never move backwards"
            self.offsets[partition] = offset


def delivered(offsets: dict[tuple[str, int], int]) -> Batch[object]:
    return Batch(None, offsets, [DeliveryTracker()])


def test_a_refused_commit_keeps_its_offsets_for_the_next_try_an_interval_later() -> None:
    broker = Broker(refuse=1)
    step = CommitOffsets(broker.commit, interval=0.0)
    step.submit(delivered({("t", 0): 10, ("t", 1): 5}))
    step.poll()  # refused: kept
    assert broker.offsets == {} and step.committed == {}
    step.submit(delivered({("t", 0): 20}))
    step.poll()  # the next try carries the refused offsets with the new ones
    assert broker.calls[-1] == {("t", 0): 20, ("t", 1): 5}
    assert broker.offsets == {("t", 0): 20, ("t", 1): 5} == step.committed
    calls = len(broker.calls)
    step.poll()  # nothing new: nothing sent
    assert len(broker.calls) == calls


def test_a_refused_commit_waits_an_interval_before_it_is_tried_again() -> None:
    broker = Broker(refuse=1)
    step = CommitOffsets(broker.commit, interval=3600.0)
    step._last_commit -= 3600.0  # the first interval has passed
    step.submit(delivered({("t", 0): 10}))
    step.poll()  # refused
    step.poll()  # within the interval: not asked again at every turn of the loop
    assert len(broker.calls) == 1
    step.join(1.0)  # shutdown or rebalance: committed whatever the interval says
    assert broker.offsets == {("t", 0): 10}
