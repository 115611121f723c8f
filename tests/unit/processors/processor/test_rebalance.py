"""On an incremental (cooperative) revoke only the revoked partitions' waiting records are dropped;
the retained partitions' records go to the next chain (the loop itself runs against the real broker
in tests/integration/processors/processor/test_group.py)."""

from __future__ import annotations

from typing import Any

from streams.steps.strategy import Batch, offsets_of
from streams.steps.stream_processor import _keep


class Msg:
    def __init__(self, topic: str, partition: int, offset: int) -> None:
        self._t, self._p, self._o = topic, partition, offset

    def topic(self) -> str:
        return self._t

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o

    def error(self) -> None:
        return None


def test_a_revoke_drops_only_the_revoked_partitions_waiting_records() -> None:
    waiting: Batch[list[Any]] = Batch(
        [Msg("req", 0, 5), Msg("req", 1, 7), Msg("req", 0, 6), Msg("req", 1, 8)],
        {("req", 0): 7, ("req", 1): 9},
    )
    kept = _keep(waiting, {("req", 1)})
    assert kept is not None
    assert [(m.partition(), m.offset()) for m in kept.payload] == [(0, 5), (0, 6)]
    assert kept.offsets == {("req", 0): 7}
    assert _keep(waiting, {("req", 0), ("req", 1)}) is None
    assert _keep(None, {("req", 0)}) is None


def test_offsets_of_takes_the_last_record_per_partition() -> None:
    msgs: list[Any] = [Msg("a", 0, 1), Msg("a", 1, 4), Msg("a", 0, 2), Msg("b", 0, 9)]
    assert offsets_of(msgs) == {("a", 0): 3, ("a", 1): 5, ("b", 0): 10}


def test_rewind_targets_seek_back_only_partitions_with_handed_but_uncommitted_work() -> None:
    from streams.steps.stream_processor import rewind_targets

    a0, a1, a2, a3 = ("a", 0), ("a", 1), ("a", 2), ("a", 3)
    nexts = {a0: 50, a1: 40, a2: 30, a3: 9}
    first = {a0: 10, a1: 20, a2: 30}
    # a0: committed 45 < 50 handed; a1: all handed work committed; a2: nothing handed;
    # a3: never committed, nothing consumed since the assignment
    assert rewind_targets({a0: 45, a1: 40}, first, nexts) == {a0: 45}
    assert rewind_targets({a0: 45}, first, nexts) == {a0: 45, a1: 20}  # a1 never committed
    assert rewind_targets({}, first, nexts) == {a0: 10, a1: 20}
