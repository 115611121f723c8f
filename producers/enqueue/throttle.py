"""Lag-based throttling of enqueue: pause while the processors are too far behind on the requests topic.

``Hysteresis`` is the pure state machine: producing pauses once the lag reaches ``max_lag`` and
resumes only when it is down to ``resume_lag`` (default half). ``EnqueueThrottle`` measures the processors'
consumer-group lag with ``streams.lag.probe.LagProbe`` and answers how many more requests may be produced
now: ``max_lag - lag``, so the lag never exceeds ``max_lag`` even when no processor runs. Records
must be flushed (delivered) before asking, so the measured end offsets include them. A throttled
wait longer than ``max_wait_seconds`` (``KCOLLECT_ENQUEUE_THROTTLE_MAX_WAIT_SECONDS``) raises
``ThrottleTimeout``: the processors are not consuming, and the enqueue stops (exit 1, the run marked
failed; the same command resumes it) instead of waiting for ever.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from producers.enqueue.progress import Reporter
from streams.lag.probe import LagProbe

PAUSED_POLL_SECONDS = 0.25


class ThrottleTimeout(RuntimeError):
    """The processors' lag stayed above the throttle's resume mark for longer than allowed."""


@dataclass
class Hysteresis:
    max_lag: int
    resume_lag: int
    paused: bool = False

    def __post_init__(self) -> None:
        if self.max_lag < 1 or not 0 <= self.resume_lag < self.max_lag:
            raise ValueError(
                f"need max lag >= 1 and 0 <= resume lag < max lag (got {self.max_lag}, {self.resume_lag})"
            )

    @classmethod
    def of(cls, max_lag: int, resume_lag: int | None = None) -> Hysteresis:
        return cls(max_lag, max_lag // 2 if resume_lag is None else resume_lag)

    def update(self, lag: int) -> bool:
        """Feed a measured lag; returns True while producing must pause."""
        if self.paused:
            self.paused = lag > self.resume_lag
        else:
            self.paused = lag >= self.max_lag
        return self.paused

    def budget(self, lag: int) -> int:
        """How many records may be produced before the lag could reach ``max_lag`` (0 when paused)."""
        return 0 if self.paused else max(self.max_lag - lag, 0)


class EnqueueThrottle:
    """Blocks while throttled; returns the number of requests that may be produced next."""

    def __init__(
        self,
        probe: LagProbe,
        hysteresis: Hysteresis,
        reporter: Reporter,
        wait: Callable[[float], object] = time.sleep,
        max_wait_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._probe = probe
        self._hysteresis = hysteresis
        self._reporter = reporter
        self._wait = wait
        self._max_wait = max_wait_seconds
        self._clock = clock
        self.throttled_seconds = 0.0
        self.last_lag = 0

    def allowance(self) -> int:
        since = self._clock()
        while True:
            lag = self.last_lag = self._probe.total()
            if not self._hysteresis.update(lag):
                self._reporter.throttled(None)
                return max(self._hysteresis.budget(lag), 1)
            limit = self._hysteresis
            if self._max_wait is not None and self._clock() - since >= self._max_wait:
                raise ThrottleTimeout(
                    f"enqueue throttled for {self._max_wait:g} s: the processors' lag is {lag:,} "
                    f"(resuming at <= {limit.resume_lag:,}); are processors running? "
                    "Run the same command again to resume the run "
                    "(KCOLLECT_ENQUEUE_THROTTLE_MAX_WAIT_SECONDS sets the limit)"
                )
            self._reporter.throttled(
                f"processor lag {lag:,} >= max {limit.max_lag:,}, resuming at <= {limit.resume_lag:,}"
                if lag >= limit.max_lag
                else f"processor lag {lag:,}, resuming at <= {limit.resume_lag:,}"
            )
            started = self._clock()
            self._wait(PAUSED_POLL_SECONDS)
            self.throttled_seconds += self._clock() - started

    def close(self) -> None:
        self._probe.close()
