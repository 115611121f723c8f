"""Per-partition windows: full by rows (aligned to offsets) or bytes, due together by rows, bytes, time or
idleness, grouped into one insert; pure, time passed in."""

from __future__ import annotations

import random

import pytest

from processors.sink.windowing import PartitionWindow, Segment, WindowLimits, WindowSet, group_windows
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
    assert ws.due(3.0) == closed  # closed on its own: it waits for its group, due by its rows
    assert ws.seconds_left(3.0) is None


def test_segment_split_at_row_boundaries() -> None:
    ws = WindowSet(WindowLimits(rows=10, bytes=BIG, seconds=60.0))
    closed = ws.add(segment(0, 25), now=0.0)
    assert spans(closed) == [(0, 10), (10, 20)]
    assert [w.offsets for w in closed] == [list(range(10)), list(range(10, 20))]
    rest = ws.close_all()  # the windows closed on their own first, then the open one
    assert spans(rest) == [(0, 10), (10, 20), (20, 25)]
    assert rest[2].offsets == list(range(20, 25))


def test_boundaries_are_aligned_to_offsets() -> None:
    ws = WindowSet(WindowLimits(rows=10, bytes=BIG, seconds=60.0))
    closed = ws.add(segment(5, 12), now=0.0)
    assert spans(closed) == [(5, 10)]
    assert closed[0].boundary == 10
    closed = ws.add(segment(12, 31), now=0.0)
    assert spans(closed) == [(10, 20), (20, 30)]
    assert closed[0].offsets == list(range(10, 20))
    assert spans(ws.close_all()) == [(5, 10), (10, 20), (20, 30), (30, 31)]


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
    # 14 rows, more than N: P1's window (closed on its own) and P0's close together
    assert [(w.partition, w.start, w.end) for w in ws.due(4.0)] == [(P1, 100, 110), (P0, 0, 4)]
    ws2 = WindowSet(WindowLimits(rows=10, bytes=BIG, seconds=5.0))
    ws2.add(segment(0, 4, partition=P0), now=0.0)
    ws2.add(segment(105, 110, partition=P1), now=3.0)  # closes at its boundary with 5 rows
    assert ws2.due(4.9) == []
    due = ws2.due(5.0)
    assert [(w.partition, w.start, w.end) for w in due] == [(P1, 105, 110), (P0, 0, 4)]
    assert len(ws) == 0


def test_trackers_go_to_the_first_window_of_a_segment() -> None:
    tracker = DeliveryTracker(pending=1)
    ws = WindowSet(WindowLimits(rows=10, bytes=BIG, seconds=60.0))
    closed = ws.add(segment(5, 15, trackers=[tracker]), now=0.0)
    assert spans(closed) == [(5, 10)]
    assert closed[0].trackers == [tracker]
    assert [w.trackers for w in ws.close_all()] == [[tracker], []]


def test_partition_window_is_full() -> None:
    limits = WindowLimits(rows=10, bytes=50, seconds=1.0)
    window = PartitionWindow(P0, 3, 9, limits, opened_at=10.0)
    assert window.boundary == 10
    assert not window.is_full()
    window.end = 10
    assert window.is_full()
    window.end, window.nbytes = 9, 50
    assert window.is_full()


def test_idle_consumer_closes_every_window_once_they_hold_enough_rows() -> None:
    ws = WindowSet(WindowLimits(rows=1000, bytes=BIG, seconds=5.0, idle_rows=10, idle_seconds=0.2))
    ws.add(segment(0, 3, partition=P1), now=0.0)
    ws.add(segment(0, 4, partition=P0), now=0.1)
    assert ws.due(0.5) == []  # quiet, but 7 rows are below the row floor: they stay on the time window
    ws.add(segment(4, 8, partition=P0), now=0.5)  # a record of any partition restarts the idle clock
    assert ws.due(0.69) == []
    closed = ws.due(0.71)
    assert [(w.partition, w.start, w.end) for w in closed] == [(P1, 0, 3), (P0, 0, 8)]
    assert len(ws) == 0


def test_windows_close_together_by_their_rows_bytes_or_the_oldest_ones_age() -> None:
    ws = WindowSet(WindowLimits(rows=10, bytes=BIG, seconds=5.0))
    ws.add(segment(0, 6, partition=P0), now=0.0)
    ws.add(segment(100, 104, partition=P1), now=1.0)
    assert ws.due(1.0) != []  # 10 rows over two partitions: one insert's worth
    by_bytes = WindowSet(WindowLimits(rows=1000, bytes=100, seconds=5.0))
    by_bytes.add(segment(0, 2, nbytes=60, partition=P0), now=0.0)
    by_bytes.add(segment(0, 2, nbytes=39, partition=P1), now=0.0)
    assert by_bytes.due(0.0) == []
    by_bytes.add(segment(2, 3, nbytes=1, partition=P1), now=0.0)
    assert [w.partition for w in by_bytes.due(0.0)] == [P0, P1]
    by_time = WindowSet(WindowLimits(rows=1000, bytes=BIG, seconds=5.0))
    by_time.add(segment(0, 2, partition=P0), now=0.0)
    by_time.add(segment(0, 2, partition=P1), now=4.9)  # young, but it closes with the oldest
    assert by_time.due(4.99) == []
    assert [w.partition for w in by_time.due(5.0)] == [P0, P1]


def test_a_group_joins_its_windows_rows_and_keeps_each_partitions_end() -> None:
    ws = WindowSet(WindowLimits(rows=1000, bytes=BIG, seconds=1.0))
    empty = segment(7, 9, offsets=[], partition=("results", 2))  # every record dead-lettered
    ws.add(segment(0, 2, partition=P0), now=0.0)
    ws.add(empty, now=0.0)
    ws.add(segment(100, 103, partition=P1), now=0.0)
    group = group_windows(ws.due(1.0))
    assert group.count == 5 and group.offsets == [0, 1, 100, 101, 102]
    assert group.columns == [[0, 1, 100, 101, 102], ["row0", "row1", "row100", "row101", "row102"]]
    assert group.sources == ["msg0", "msg1", "msg100", "msg101", "msg102"]
    assert group.ends() == {P0: 2, ("results", 2): 9, P1: 103}
    assert group.label() == "results:0:0-2+results:2:7-9+results:1:100-103"
    single = WindowSet(WindowLimits(rows=1000, bytes=BIG, seconds=1.0))
    single.add(segment(0, 2), now=0.0)
    (window,) = single.close_all()
    alone = group_windows([window])
    assert alone.columns is window.columns and alone.label() == window.label()  # no copy


def test_idle_rule_off_by_default() -> None:
    ws = WindowSet(WindowLimits(rows=1000, bytes=BIG, seconds=5.0))
    ws.add(segment(0, 100), now=0.0)
    assert ws.due(4.9) == []
    assert spans(ws.due(5.0)) == [(0, 100)]


def _cuts_of(limits: WindowLimits, seed: int) -> list[tuple[tuple[str, int], int, int]]:
    """Three partitions' offsets 0-499 fed in random segment sizes and a random interleaving: the
    windows closed before the end (the last ones are closed by time or a rebalance)."""
    rng = random.Random(seed)
    partitions = [("results", p) for p in range(3)]
    next_offset = dict.fromkeys(partitions, 0)
    ws = WindowSet(limits)
    cuts: list[tuple[tuple[str, int], int, int]] = []
    while any(o < 500 for o in next_offset.values()):
        part = rng.choice([p for p in partitions if next_offset[p] < 500])
        start = next_offset[part]
        end = min(500, start + rng.randint(1, 40))
        next_offset[part] = end
        ws.add(segment(start, end, partition=part), now=0.0)
        cuts.extend((w.partition, w.start, w.end) for w in ws.due(0.0) if w.count)
    return sorted(cuts)


def test_one_by_one_windows_are_cut_the_same_whatever_the_interleaving() -> None:
    """On a cluster a restarted sink must send the same blocks: with windows closed one by one, the
    cuts depend only on each partition's records, never on how partitions interleave or how consume()
    cut them. Grouped windows close at whatever the interleaving makes their sum reach."""
    one_by_one = WindowLimits(rows=64, bytes=BIG, seconds=BIG, grouped=False)
    first = _cuts_of(one_by_one, 0)
    assert first and all(end - start == 64 for _, start, end in first)  # the aligned boundaries
    for seed in range(1, 30):
        assert _cuts_of(one_by_one, seed) == first
    grouped = WindowLimits(rows=64, bytes=BIG, seconds=BIG)
    assert len({tuple(_cuts_of(grouped, seed)) for seed in range(30)}) > 1


def test_one_by_one_windows_close_by_their_own_age_and_the_idle_rule() -> None:
    ws = WindowSet(
        WindowLimits(rows=10, bytes=BIG, seconds=5.0, idle_rows=5, idle_seconds=1.0, grouped=False)
    )
    ws.add(segment(0, 6, partition=P0), now=0.0)
    ws.add(segment(100, 104, partition=P1), now=3.0)
    assert ws.due(3.5) == []  # 10 rows over two partitions close nothing: each window counts its own
    assert [w.partition for w in ws.due(5.0)] == [P0]  # P0 is 5 s old; P1 is younger, too small to close idle
    ws.add(segment(104, 105, partition=P1), now=5.5)
    assert [(w.partition, w.end) for w in ws.due(6.5)] == [(P1, 105)]  # idle 1 s with 5 rows
    assert len(ws) == 0
