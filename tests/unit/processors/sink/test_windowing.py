"""Per-partition windows: due by rows (aligned to offsets), bytes or time; pure, time passed in."""

from __future__ import annotations

import pytest

from processors.sink.windowing import PartitionWindow, Segment, WindowLimits, WindowSet
from streams.kafka.producer import DeliveryTracker

P0 = ("results", 0)
P1 = ("results", 1)
BIG = 10**12


def segment(
    start: int,
    end: int,
    offsets: list[int] | None = None,
    nbytes: int | None = None,
    partition: tuple[str, int] = P0,
    trackers: list[DeliveryTracker] | None = None,
) -> Segment:
    offsets = list(range(start, end)) if offsets is None else offsets
    columns = [list(offsets), [f"row{o}" for o in offsets]]  # two columns that must move together
    return Segment(
        partition,
        start,
        end,
        columns,
        offsets,
        [f"msg{o}" for o in offsets],
        len(offsets) if nbytes is None else nbytes,
        trackers or [],
    )


def spans(windows: list[PartitionWindow]) -> list[tuple[int, int]]:
    return [(w.start, w.end) for w in windows]


def test_empty_set_is_never_due() -> None:
    ws = WindowSet(WindowLimits(rows=10, bytes=BIG, seconds=1.0))
    assert len(ws) == 0
    assert ws.due(0.0) == []
    assert ws.due(1e9) == []
    assert ws.seconds_left(5.0) is None
    assert ws.close_all() == []


def test_due_by_rows() -> None:
    ws = WindowSet(WindowLimits(rows=10, bytes=BIG, seconds=60.0))
    assert ws.add(segment(0, 9), now=0.0) == []
    assert len(ws) == 1
    assert ws.due(1.0) == []
    closed = ws.add(segment(9, 10), now=2.0)
    assert spans(closed) == [(0, 10)]
    window = closed[0]
    assert window.columns == [list(range(10)), [f"row{o}" for o in range(10)]] and window.count == 10
    assert window.offsets == list(range(10))
    assert window.sources == [f"msg{o}" for o in range(10)]
    assert window.label() == "results:0:0-10"
    assert len(ws) == 0
    assert ws.seconds_left(3.0) is None


def test_segment_split_at_row_boundaries() -> None:
    ws = WindowSet(WindowLimits(rows=10, bytes=BIG, seconds=60.0))
    closed = ws.add(segment(0, 25), now=0.0)
    assert spans(closed) == [(0, 10), (10, 20)]
    assert [w.offsets for w in closed] == [list(range(10)), list(range(10, 20))]
    rest = ws.close_all()
    assert spans(rest) == [(20, 25)]
    assert rest[0].offsets == list(range(20, 25))


def test_boundaries_are_aligned_to_offsets() -> None:
    ws = WindowSet(WindowLimits(rows=10, bytes=BIG, seconds=60.0))
    closed = ws.add(segment(5, 12), now=0.0)
    assert spans(closed) == [(5, 10)]
    assert closed[0].boundary == 10
    closed = ws.add(segment(12, 31), now=0.0)
    assert spans(closed) == [(10, 20), (20, 30)]
    assert closed[0].offsets == list(range(10, 20))
    assert spans(ws.close_all()) == [(30, 31)]


def test_rows_count_offsets_not_valid_rows() -> None:
    # Offsets 0-9 were consumed but only 2 records were valid: the window still closes at offset 10.
    ws = WindowSet(WindowLimits(rows=10, bytes=BIG, seconds=60.0))
    closed = ws.add(segment(0, 10, offsets=[1, 5]), now=0.0)
    assert spans(closed) == [(0, 10)]
    assert closed[0].offsets == [1, 5]


def test_due_by_bytes() -> None:
    ws = WindowSet(WindowLimits(rows=1000, bytes=100, seconds=60.0))
    assert ws.add(segment(0, 3, nbytes=99), now=0.0) == []
    closed = ws.add(segment(3, 4, nbytes=1), now=0.0)
    assert spans(closed) == [(0, 4)]
    assert closed[0].nbytes == 100


def test_bytes_split_in_proportion() -> None:
    ws = WindowSet(WindowLimits(rows=10, bytes=BIG, seconds=60.0))
    closed = ws.add(segment(0, 20, nbytes=2000), now=0.0)
    assert [w.nbytes for w in closed] == [1000, 1000]


def test_due_by_time_and_seconds_left() -> None:
    ws = WindowSet(WindowLimits(rows=1000, bytes=BIG, seconds=2.0))
    ws.add(segment(0, 1), now=100.0)
    assert ws.seconds_left(100.0) == pytest.approx(2.0)
    assert ws.seconds_left(101.5) == pytest.approx(0.5)
    assert ws.seconds_left(150.0) == 0.0
    ws.add(segment(1, 2), now=101.0)  # more rows do not restart the clock
    assert ws.due(101.99) == []
    closed = ws.due(102.0)
    assert spans(closed) == [(0, 2)]
    assert len(ws) == 0
    assert ws.seconds_left(103.0) is None


def test_windows_are_per_partition() -> None:
    ws = WindowSet(WindowLimits(rows=10, bytes=BIG, seconds=5.0))
    ws.add(segment(0, 4, partition=P0), now=0.0)
    ws.add(segment(100, 108, partition=P1), now=3.0)
    assert len(ws) == 2
    assert ws.seconds_left(4.0) == pytest.approx(1.0)  # the oldest window decides
    closed = ws.add(segment(108, 110, partition=P1), now=4.0)
    assert [(w.partition, w.start, w.end) for w in closed] == [(P1, 100, 110)]
    assert closed[0].label() == "results:1:100-110"
    due = ws.due(5.0)
    assert [(w.partition, w.start, w.end) for w in due] == [(P0, 0, 4)]
    assert len(ws) == 0


def test_trackers_go_to_the_first_window_of_a_segment() -> None:
    tracker = DeliveryTracker(pending=1)
    ws = WindowSet(WindowLimits(rows=10, bytes=BIG, seconds=60.0))
    closed = ws.add(segment(5, 15, trackers=[tracker]), now=0.0)
    assert spans(closed) == [(5, 10)]
    assert closed[0].trackers == [tracker]
    assert ws.close_all()[0].trackers == []


def test_partition_window_is_due() -> None:
    limits = WindowLimits(rows=10, bytes=50, seconds=1.0)
    window = PartitionWindow(P0, 3, 9, limits, opened_at=10.0)
    assert window.boundary == 10
    assert not window.is_due(10.5)
    assert window.is_due(11.0)
    window.end = 10
    assert window.is_due(10.0)
    window.end, window.nbytes = 9, 50
    assert window.is_due(10.0)


def test_idle_partition_closes_a_window_with_enough_rows() -> None:
    ws = WindowSet(WindowLimits(rows=1000, bytes=BIG, seconds=5.0, idle_rows=10, idle_seconds=0.2))
    ws.add(segment(0, 8, partition=P0), now=0.0)
    ws.add(segment(8, 12, partition=P0), now=0.5)  # a record restarts the idle clock
    ws.add(segment(0, 3, partition=P1), now=0.0)  # below the row floor: stays on the time window
    assert ws.due(0.69) == []
    closed = ws.due(0.71)
    assert [(w.partition, w.start, w.end) for w in closed] == [(P0, 0, 12)]
    assert ws.due(4.99) == []
    assert [(w.partition, w.start, w.end) for w in ws.due(5.0)] == [(P1, 0, 3)]


def test_idle_rule_off_by_default() -> None:
    ws = WindowSet(WindowLimits(rows=1000, bytes=BIG, seconds=5.0))
    ws.add(segment(0, 100), now=0.0)
    assert ws.due(4.9) == []
    assert spans(ws.due(5.0)) == [(0, 100)]
