"""Per-partition windows for the sink: rows collect until N rows, B bytes or T seconds, whichever first.

Pure: the caller passes the monotonic time in; no Kafka, no ClickHouse.

Each Kafka partition has its own window, so a window is one contiguous offset range
``[start, end)`` of one partition; that range names the insert (its deduplication token) and is what
the commit after it acknowledges. Row-count boundaries are aligned to offsets: a window closes when
it reaches the next multiple of N (``boundary``), wherever the consumed batches happened to start or
end. Windows closed by count are therefore the same ranges on every replay; only windows closed by
time (T), bytes (B) or idleness depend on timing, and the window after one realigns at the next
multiple of N.

**Idle**: a window that holds at least ``idle_rows`` rows also closes once its partition brought no
record for ``idle_seconds``: the consumer has caught up (the end of a run's burst), so waiting out T
would only delay the last rows. The row floor keeps a trickle on the time window: no insert smaller
than ``idle_rows`` is made early. ``idle_seconds`` 0 turns the rule off.

Rows travel as columns (one list per column, any number of columns: the sink's are
``processors.sink.columns.ResultColumns``); each row also has its offset, its message and its position in
that message. A record may hold many rows (a result batch, ``schemas.result_batch``): its rows share
its offset and never split across windows. A window also closes once it holds N rows, after the record that
reached N; that cut depends only on the window's start and the records, so it is the same on a replay
from the same start (every commit is a window's end).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from typing import Any

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
    added_at: float = 0.0  # when its partition last brought a record (the idle rule's clock)

    @property
    def count(self) -> int:
        """Rows in the window."""
        return len(self.offsets)

    @property
    def boundary(self) -> int:
        """The offset at which this window closes by count (the next multiple of ``limits.rows``)."""
        return (self.start // self.limits.rows + 1) * self.limits.rows

    def is_due(self, now: float) -> bool:
        limits = self.limits
        return (
            self.end >= self.boundary
            or self.count >= limits.rows
            or self.nbytes >= limits.bytes
            or now - self.opened_at >= limits.seconds
            or (0 < limits.idle_seconds <= now - self.added_at and self.count >= limits.idle_rows)
        )

    def label(self) -> str:
        """``topic:partition:start-end``: the window's identity (offsets ``[start, end)``)."""
        return f"{self.partition[0]}:{self.partition[1]}:{self.start}-{self.end}"


class WindowSet:
    """The open windows of every partition; ``add`` and ``due`` hand back the windows that closed."""

    def __init__(self, limits: WindowLimits) -> None:
        self.limits = limits
        self._open: dict[Partition, PartitionWindow] = {}

    def __len__(self) -> int:
        return len(self._open)

    def add(self, segment: Segment, now: float) -> list[PartitionWindow]:
        """Add a segment, splitting it at offset boundaries; returns the windows it closed, in order."""
        closed: list[PartitionWindow] = []
        part = segment.partition
        position = segment.start
        lo, count = 0, len(segment.offsets)
        trackers = segment.trackers
        while True:
            window = self._open.get(part)
            if window is None:
                window = PartitionWindow(part, position, position, self.limits, now)
                self._open[part] = window
            window.added_at = now
            boundary = window.boundary
            hi = bisect_left(segment.offsets, boundary, lo) if segment.end > boundary else count
            end = min(segment.end, boundary)
            room = max(self.limits.rows - window.count, 1)
            if hi - lo > room:  # N rows first: close after the record that holds the N-th row
                last = segment.offsets[lo + room - 1]
                hi = bisect_right(segment.offsets, last, lo, hi)
                end = last + 1
            if hi > lo:
                if not window.columns:
                    window.columns = [[] for _ in segment.columns]
                for column, values in zip(window.columns, segment.columns, strict=True):
                    column.extend(values[lo:hi])
                window.offsets.extend(segment.offsets[lo:hi])
                window.sources.extend(segment.sources[lo:hi])
                window.positions.extend(segment.positions[lo:hi])
                window.nbytes += segment.nbytes * (hi - lo) // max(count, 1)
            if trackers:
                window.trackers.extend(trackers)
                trackers = []
            window.end = end
            lo = hi
            if window.is_due(now):
                closed.append(self._open.pop(part))
            if window.end >= segment.end:
                return closed
            position = window.end

    def due(self, now: float) -> list[PartitionWindow]:
        """Close and return the windows due by time (or idleness)."""
        due = [w for w in self._open.values() if w.is_due(now)]
        for window in due:
            del self._open[window.partition]
        return due

    def close_all(self) -> list[PartitionWindow]:
        closed = list(self._open.values())
        self._open.clear()
        return closed

    def seconds_left(self, now: float) -> float | None:
        """Time until the first window is due by time, or None when none is open."""
        if not self._open:
            return None
        oldest = min(w.opened_at for w in self._open.values())
        return max(0.0, self.limits.seconds - (now - oldest))
