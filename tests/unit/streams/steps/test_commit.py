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
    """The consumer's commit as the commit step sees it: ``lose_async`` asynchronous commits vanish
    (the coordinator moved: librdkafka reports nothing), ``refuse_sync`` synchronous ones raise."""

    def __init__(self, lose_async: int = 0, refuse_sync: int = 0) -> None:
        self.lose_async, self.refuse_sync = lose_async, refuse_sync
        self.offsets: dict[tuple[str, int], int] = {}
        self.calls: list[tuple[dict[tuple[str, int], int], bool]] = []

    def commit(self, offsets: dict[tuple[str, int], int], asynchronous: bool) -> None:
        self.calls.append((dict(offsets), asynchronous))
        if asynchronous and self.lose_async:
            self.lose_async -= 1
            return
        if not asynchronous and self.refuse_sync:
            self.refuse_sync -= 1
            raise KafkaException(KafkaError(KafkaError.NOT_COORDINATOR))
        for partition, offset in offsets.items():
            assert offset >= self.offsets.get(partition, 0), "committed offsets never move backwards"
            self.offsets[partition] = offset


def delivered(offsets: dict[tuple[str, int], int]) -> Batch[object]:
    return Batch(None, offsets, [DeliveryTracker()])


def test_a_lost_asynchronous_commit_is_made_again_synchronously_once_idle() -> None:
    broker = Broker(lose_async=1, refuse_sync=1)
    step = CommitOffsets(broker.commit, interval=0.0)
    step.submit(delivered({("t", 0): 10, ("t", 1): 5}))
    step.poll()  # sent asynchronously, lost
    assert broker.offsets == {}
    step.poll()  # nothing new ready: confirmed synchronously; refused this time, kept
    assert broker.offsets == {} and broker.calls[-1] == ({("t", 0): 10, ("t", 1): 5}, False)
    step.poll()
    assert broker.offsets == {("t", 0): 10, ("t", 1): 5}
    calls = len(broker.calls)
    step.poll()  # confirmed: nothing more to send
    assert len(broker.calls) == calls


def test_a_later_commit_supersedes_the_unconfirmed_offsets_of_its_partitions() -> None:
    broker = Broker(lose_async=1)
    step = CommitOffsets(broker.commit, interval=0.0)
    step.submit(delivered({("t", 0): 10, ("t", 1): 5}))
    step.poll()  # lost
    step.submit(delivered({("t", 0): 20}))
    step.poll()  # lands: partition 0 at 20; partition 1 still unconfirmed
    assert broker.offsets == {("t", 0): 20}
    step.join(1.0)  # shutdown or rebalance: every unconfirmed offset committed synchronously
    assert broker.offsets == {("t", 0): 20, ("t", 1): 5}
