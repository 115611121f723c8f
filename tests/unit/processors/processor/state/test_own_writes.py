"""A processor counts its own confirmed changelog writes per partition, except those made before a loss."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from processors.processor.state.history import StateSpec
from processors.processor.state.manager import Bounds, StateStores
from streams.settings.model import Settings


class Report:
    """What a delivery callback reads of a delivered record."""

    def __init__(self, partition: int, offset: int) -> None:
        self._partition, self._offset = partition, offset

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset


def stores(tmp_path: Path) -> StateStores:
    producer: Any = None  # never produces here
    return StateStores(
        Settings(processor_store_dir=str(tmp_path)), "cl", producer, StateSpec({}), Bounds(1, 1)
    )


def test_confirmed_writes_move_the_own_end(tmp_path: Path) -> None:
    state = stores(tmp_path)
    tracker = state.tracker()
    tracker.pending = 3
    for offset in (4, 6, 5):
        tracker.on_delivery(None, Report(2, offset))  # type: ignore[arg-type]
    assert state.own_ends == {2: 7} and tracker.done


def test_writes_made_before_a_loss_do_not_count(tmp_path: Path) -> None:
    state = stores(tmp_path)
    before = state.tracker()
    before.pending = 2
    before.on_delivery(None, Report(1, 10))  # type: ignore[arg-type]
    state.lost([("t.requests", 1)])
    assert state.own_ends == {}
    before.on_delivery(None, Report(1, 11))  # delivered after the loss: another member may own it
    assert state.own_ends == {}
    after = state.tracker()
    after.pending = 1
    after.on_delivery(None, Report(1, 20))  # type: ignore[arg-type]
    assert state.own_ends == {1: 21}
