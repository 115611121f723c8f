"""The commit step's ordering rule: offsets move to 'ready' only in order, and never past a failure."""

from __future__ import annotations

from collections import deque

import pytest

from streams.kafka.producer import DeliveryTracker
from streams.steps.commit import DeliveryFailed, take_delivered
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
