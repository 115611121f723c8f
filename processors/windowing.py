"""Windows for the sink: collect rows until N rows, B bytes or T seconds since the first row.

Pure: the caller passes the monotonic time in; no Kafka, no ClickHouse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streams.producer import DeliveryTracker
from streams.strategy import Partition

Record = dict[str, Any]


@dataclass(frozen=True)
class WindowLimits:
    """Flush when any limit is reached."""

    rows: int
    bytes: int
    seconds: float


@dataclass
class Window:
    """An open window of rows and the offsets and deliveries they stand for."""

    limits: WindowLimits
    rows: list[Record] = field(default_factory=list)
    nbytes: int = 0
    opened_at: float | None = None
    offsets: dict[Partition, int] = field(default_factory=dict)
    trackers: list[DeliveryTracker] = field(default_factory=list)

    def add(
        self,
        rows: list[Record],
        nbytes: int,
        offsets: dict[Partition, int],
        trackers: list[DeliveryTracker],
        now: float,
    ) -> None:
        if self.opened_at is None and (rows or offsets):
            self.opened_at = now
        self.rows.extend(rows)
        self.nbytes += nbytes
        self.offsets.update(offsets)
        self.trackers.extend(trackers)

    @property
    def empty(self) -> bool:
        return self.opened_at is None

    def is_due(self, now: float) -> bool:
        if self.opened_at is None:
            return False
        return (
            len(self.rows) >= self.limits.rows
            or self.nbytes >= self.limits.bytes
            or now - self.opened_at >= self.limits.seconds
        )

    def seconds_left(self, now: float) -> float | None:
        """Time until the window is due by time, or None when it is empty."""
        return None if self.opened_at is None else max(0.0, self.limits.seconds - (now - self.opened_at))
