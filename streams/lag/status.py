"""Burrow-style status of a consumer group's partitions from a sliding window of lag samples (pure).

Rules, checked in this order for one partition (after Burrow's consumer evaluation rules):

1. UNMEASURED: the latest sample could not be measured (``error`` set). Not Burrow's ERR, which means
   a stopped or stalled consumer: here nothing is known about the partition.
2. REWIND: the committed offset moved backwards between two samples of the window (a reset, a seek, a
   recreated topic): records after the new offset are consumed again, which at-least-once operators
   want flagged. It stays while that pair of samples is in the window.
3. OK: the latest lag is 0, or any lag in the window is 0 (the consumer caught up within the window).
4. STOPPED: lag > 0 and the consumer is gone (the group reports no active member, ``consumer_present``
   is False), or the committed offset has not moved for ``stopped_after`` seconds (no commits for a
   while; counted from the first sample that saw the current offset, across windows).
5. STALLED: lag > 0 and the committed offset did not move across the whole window (at least
   ``min_samples`` samples): a member is there but is not committing.
6. WARNING: the committed offset moves but the lag grew at every step of the window and ends higher
   than it started: the consumer is falling behind. A constant non-zero lag with moving offsets
   (keeping up under load) is OK.
7. OK otherwise; also with fewer than ``min_samples`` samples, when there is not enough evidence.

A group's status is the worst of its partitions'. ``LagTracker`` keeps the windows between samples.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum


class Status(IntEnum):
    """Partition or group status; a larger value is worse (tables sort worst first)."""

    OK = 0
    WARNING = 1
    STALLED = 2
    STOPPED = 3
    REWIND = 4
    UNMEASURED = 5


@dataclass(frozen=True)
class Sample:
    """One measurement of a partition: ``at`` in seconds (any monotonic clock), offsets, lag."""

    at: float
    committed: int | None
    lag: int
    error: str | None = None


@dataclass(frozen=True)
class Rules:
    """Evaluation thresholds: samples needed for STALLED/WARNING, and seconds without commits for STOPPED."""

    min_samples: int = 2
    stopped_after: float = 300.0


def evaluate(
    window: Sequence[Sample],
    *,
    now: float,
    last_moved_at: float | None,
    consumer_present: bool | None,
    rules: Rules | None = None,
) -> Status:
    """The status of one partition from its window (oldest first).

    ``last_moved_at``: when the committed offset was first seen at its current value (None: unknown).
    ``consumer_present``: False when the group has no active member, None when the broker cannot say.
    """
    rules = rules or Rules()
    if not window:
        return Status.OK
    latest = window[-1]
    if latest.error is not None:
        return Status.UNMEASURED
    measured = [s for s in window if s.error is None]
    if rewound(measured):
        return Status.REWIND
    if latest.lag == 0 or any(s.lag == 0 for s in measured):
        return Status.OK
    if consumer_present is False:
        return Status.STOPPED
    if last_moved_at is not None and now - last_moved_at >= rules.stopped_after:
        return Status.STOPPED
    if len(measured) < rules.min_samples:
        return Status.OK
    if all(s.committed == measured[0].committed for s in measured):
        return Status.STALLED
    lags = [s.lag for s in measured]
    if all(b >= a for a, b in itertools.pairwise(lags)) and lags[-1] > lags[0]:
        return Status.WARNING
    return Status.OK


def rewound(measured: Sequence[Sample]) -> bool:
    """True when a committed offset is lower than the one of the sample before it (both known)."""
    offsets = [s.committed for s in measured if s.committed is not None]
    return any(b < a for a, b in itertools.pairwise(offsets))


def worst(statuses: Iterable[Status]) -> Status:
    """The worst status (OK for none)."""
    return max(statuses, default=Status.OK)


@dataclass
class _Track:
    window: deque[Sample]
    committed: int | None = None
    moved_at: float | None = None


class LagTracker:
    """Sliding windows of samples per key (e.g. ``(group, topic, partition)``), at most ``size`` each."""

    def __init__(self, size: int = 10, rules: Rules | None = None) -> None:
        if size < 1:
            raise ValueError(f"window size must be >= 1 (got {size})")
        self.size = size
        self.rules = rules or Rules()
        self._tracks: dict[Hashable, _Track] = {}

    def observe(self, key: Hashable, sample: Sample) -> None:
        """Add a sample (samples of one key must come in time order)."""
        track = self._tracks.get(key)
        if track is None:
            track = self._tracks[key] = _Track(deque(maxlen=self.size))
        if sample.error is None and (track.moved_at is None or sample.committed != track.committed):
            track.committed, track.moved_at = sample.committed, sample.at
        track.window.append(sample)

    def window(self, key: Hashable) -> list[Sample]:
        track = self._tracks.get(key)
        return list(track.window) if track is not None else []

    def status(self, key: Hashable, now: float, consumer_present: bool | None = None) -> Status:
        track = self._tracks.get(key)
        if track is None:
            return Status.OK
        return evaluate(
            track.window,
            now=now,
            last_moved_at=track.moved_at,
            consumer_present=consumer_present,
            rules=self.rules,
        )

    def forget_except(self, keys: Iterable[Hashable]) -> None:
        """Drop the windows of keys no longer measured (a deleted group or topic)."""
        keep = set(keys)
        for key in [k for k in self._tracks if k not in keep]:
            del self._tracks[key]
