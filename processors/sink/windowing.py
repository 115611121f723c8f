"""Per-partition windows for the sink, closed together and written as one insert.

Pure: the caller passes the monotonic time in; no Kafka, no ClickHouse.

Each Kafka partition has its own window, so a window is one contiguous offset range
``[start, end)`` of one partition; that range is what the commit after the insert acknowledges.
The open windows close **together** (``WindowSet.due``), whichever comes first:

- their rows reach N (``rows``) or their record bytes B (``bytes``), counted over every open window;
- the oldest of them is T seconds old (``seconds``);
- **idle**: they hold at least ``idle_rows`` rows and no partition brought a record for
  ``idle_seconds``: the consumer has caught up (the end of a run's burst), so waiting out T would
  only delay the last rows. The row floor keeps a trickle on the time window: no insert smaller
  than ``idle_rows`` is made early. ``idle_seconds`` 0 turns the rule off.

The windows closed together are one ``WindowGroup``: their rows end to end, one insert (per month),
its offsets committed per partition once that insert is acknowledged. With P partitions an insert
therefore holds about N rows, not N / P: ClickHouse's CPU per row falls steeply with the size of an
insert (every insert makes a part in each table of ``client_results``'s views, which merges rewrite).

On a ClickHouse cluster the windows close **one by one** instead (``WindowLimits.grouped`` False):
each by its own rules and each its own insert, so that a sink restarted from a committed offset sends
the same blocks again and the replicas drop them (block deduplication needs identical blocks).

A window also closes on its own (``WindowSet.add``) once it reaches the next offset that is a
multiple of N (``boundary``) or holds N rows, after the record that reached N; those cuts depend only
on the window's start and the records, so they are the same on a replay from the same start (every
commit is a window's end). Windows closed by the group rules depend on timing; the window after one
realigns at the next multiple of N.

Rows travel as columns (one list per column, any number of columns: the sink's are
``processors.sink.columns.ResultColumns``); each row also has its offset, its message and its position in
that message. A record may hold many rows (a result batch, ``schemas.result_batch``): its rows share
its offset and never split across windows.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from typing import Any, Protocol

from processors.sink.columns import ResultColumns
from streams.kafka.producer import DeliveryTracker
from streams.steps.strategy import Partition


@dataclass(frozen=True)
class WindowLimits:
    """Flush when any limit is reached (rows: offsets per window, aligned to multiples of ``rows``)."""

    rows: int
    bytes: int
    seconds: float
    idle_rows: int = 1
    idle_seconds: float = 0.0  # 0: no idle rule
    grouped: bool = True
    """False: windows close one by one (their own count, bytes, age, idle) and each is its own insert,
    so a replay from a committed offset cuts the same blocks as far as count and bytes decide: what a
    replicated table's block deduplication needs (the sink sets it on a ClickHouse cluster)."""


class WindowRows(Protocol):
    """What an insert writes: rows as columns, with each row's offset, message and position in it."""

    columns: ResultColumns
    offsets: list[int]
    sources: list[Any]
    positions: list[int]

    @property
    def count(self) -> int: ...

    def label(self) -> str: ...


@dataclass
class Segment:
    """One partition's share of a consumed batch: its valid rows (as columns) and the offsets it covers."""

    partition: Partition
    start: int  # offset of the first record consumed (valid or not)
    end: int  # offset after the last record consumed
    columns: ResultColumns
    offsets: list[int]  # the offset of each row (rows of one result batch share it)
    sources: list[Any]  # the consumed message of each row (for dead-lettering after an insert)
    nbytes: int
    trackers: list[DeliveryTracker] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)  # each row's position in its record


@dataclass
class PartitionWindow:
    """An open (or closed) window: rows of one partition's offset range and the deliveries they await."""

    partition: Partition
    start: int
    end: int
    limits: WindowLimits
    opened_at: float
    columns: ResultColumns = field(default_factory=list)  # as wide as the first segment's, once one came
    offsets: list[int] = field(default_factory=list)
    sources: list[Any] = field(default_factory=list)
    nbytes: int = 0
    trackers: list[DeliveryTracker] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)

    @property
    def count(self) -> int:
        """Rows in the window."""
        return len(self.offsets)

    @property
    def boundary(self) -> int:
        """The offset at which this window closes by count (the next multiple of ``limits.rows``)."""
        return (self.start // self.limits.rows + 1) * self.limits.rows

    def is_full(self) -> bool:
        """Closes on its own: at its offset boundary, N rows or B bytes."""
        limits = self.limits
        return self.end >= self.boundary or self.count >= limits.rows or self.nbytes >= limits.bytes

    def label(self) -> str:
        """``topic:partition:start-end``: the window's identity (offsets ``[start, end)``)."""
        return f"{self.partition[0]}:{self.partition[1]}:{self.start}-{self.end}"


@dataclass
class WindowGroup:
    """Windows closed together, written as one insert: their rows end to end, in closing order."""

    windows: list[PartitionWindow]
    columns: ResultColumns
    offsets: list[int]
    sources: list[Any]
    positions: list[int]

    @property
    def count(self) -> int:
        return len(self.offsets)

    def label(self) -> str:
        """The windows' labels joined by ``+``: the group's identity."""
        return "+".join(w.label() for w in self.windows)

    def ends(self) -> dict[Partition, int]:
        """The offset to commit per partition once the group is stored (the last window's end)."""
        return {w.partition: w.end for w in self.windows}


def group_windows(windows: list[PartitionWindow]) -> WindowGroup:
    """One group of ``windows`` (at least one): a single window's lists are taken as they are, several
    windows' are joined (one copy per column)."""
    with_rows = [w for w in windows if w.count]
    if len(with_rows) == 1:
        only = with_rows[0]
        return WindowGroup(windows, only.columns, only.offsets, only.sources, only.positions)
    if not with_rows:
        return WindowGroup(windows, [], [], [], [])

    def joined(lists: list[list[Any]]) -> list[Any]:
        out = lists[0].copy()
        for more in lists[1:]:
            out.extend(more)
        return out

    width = len(with_rows[0].columns)
    return WindowGroup(
        windows,
        [joined([w.columns[i] for w in with_rows]) for i in range(width)],
        joined([w.offsets for w in with_rows]),
        joined([w.sources for w in with_rows]),
        joined([w.positions for w in with_rows]),
    )


def _extend(window: PartitionWindow, segment: Segment, lo: int, hi: int) -> None:
    """Rows ``[lo, hi)`` of ``segment`` onto ``window``. A segment's lists are its own: taken whole
    they are extended from without a slice, and an empty window takes them as they are (no copy)."""
    whole = lo == 0 and hi == len(segment.offsets)
    if whole and not window.offsets:
        window.columns = segment.columns
        window.offsets, window.sources, window.positions = segment.offsets, segment.sources, segment.positions
        return
    if not window.columns:
        window.columns = [[] for _ in segment.columns]
    pairs = [
        *zip(window.columns, segment.columns, strict=True),
        (window.offsets, segment.offsets),
        (window.sources, segment.sources),
        (window.positions, segment.positions),
    ]
    for mine, theirs in pairs:
        mine.extend(theirs if whole else theirs[lo:hi])


class WindowSet:
    """The open windows of every partition; ``add`` and ``due`` hand back the windows that closed."""

    def __init__(self, limits: WindowLimits) -> None:
        self.limits = limits
        self._open: dict[Partition, PartitionWindow] = {}
        self._closed: list[PartitionWindow] = []  # closed on their own, waiting for their group
        self._last_added = 0.0  # when any partition last brought a record (the idle rule's clock)

    def __len__(self) -> int:
        """Open windows (those closed on their own and waiting for their group not counted)."""
        return len(self._open)

    def add(self, segment: Segment, now: float) -> list[PartitionWindow]:
        """Add a segment, splitting it at offset boundaries; returns the windows it closed on their
        own, in order (they wait for their group: ``due``, ``close_all``). A segment is added once:
        its lists may become a window's own."""
        closed: list[PartitionWindow] = []
        part = segment.partition
        position = segment.start
        lo, count = 0, len(segment.offsets)
        trackers = segment.trackers
        self._last_added = now
        while True:
            window = self._open.get(part)
            if window is None:
                window = PartitionWindow(part, position, position, self.limits, now)
                self._open[part] = window
            boundary = window.boundary
            hi = bisect_left(segment.offsets, boundary, lo) if segment.end > boundary else count
            end = min(segment.end, boundary)
            room = max(self.limits.rows - window.count, 1)
            if hi - lo > room:  # N rows first: close after the record that holds the N-th row
                last = segment.offsets[lo + room - 1]
                hi = bisect_right(segment.offsets, last, lo, hi)
                end = last + 1
            if hi > lo:
                _extend(window, segment, lo, hi)
                window.nbytes += segment.nbytes * (hi - lo) // max(count, 1)
            if trackers:
                window.trackers.extend(trackers)
                trackers = []
            window.end = end
            lo = hi
            if window.is_full():
                closed.append(self._open.pop(part))
                self._closed.append(window)
            if window.end >= segment.end:
                return closed
            position = window.end

    def _windows(self) -> list[PartitionWindow]:
        """The windows closed on their own that wait for their group, then the open ones."""
        return [*self._closed, *self._open.values()]

    def is_due(self, now: float) -> bool:
        """Whether the windows are due together (module docstring: N, B, T, idle)."""
        windows = self._windows()
        if not windows:
            return False
        limits = self.limits
        rows = sum(w.count for w in windows)
        return (
            rows >= limits.rows
            or sum(w.nbytes for w in windows) >= limits.bytes
            or now - min(w.opened_at for w in windows) >= limits.seconds
            or (0 < limits.idle_seconds <= now - self._last_added and rows >= limits.idle_rows)
        )

    def due(self, now: float) -> list[PartitionWindow]:
        """Close and return every window (those closed on their own first) when they are due
        together, else none; one by one (``limits.grouped`` False): the windows closed on their own
        and each open window due by its own age or the idle rule."""
        if self.limits.grouped:
            return self.close_all() if self.is_due(now) else []
        limits = self.limits
        idle = 0 < limits.idle_seconds <= now - self._last_added
        due = [
            w
            for w in self._open.values()
            if now - w.opened_at >= limits.seconds or (idle and w.count >= limits.idle_rows)
        ]
        for window in due:
            del self._open[window.partition]
        closed, self._closed = [*self._closed, *due], []
        return closed

    def close_all(self) -> list[PartitionWindow]:
        closed = self._windows()
        self._closed = []
        self._open.clear()
        return closed

    def seconds_left(self, now: float) -> float | None:
        """Time until the windows are due by time, or None when there is none."""
        windows = self._windows()
        if not windows:
            return None
        oldest = min(w.opened_at for w in windows)
        return max(0.0, self.limits.seconds - (now - oldest))
