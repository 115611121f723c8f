"""A circuit breaker per subsystem: closed -> open after consecutive failures -> half-open probes.

- closed: calls go through; ``failure_threshold`` consecutive failures open the breaker.
- open: calls are refused at once (``allow()`` is False) for ``reset_seconds``.
- half-open: after that, up to ``half_open_probes`` calls go through as probes; one success closes
  the breaker, a failure opens it again for another ``reset_seconds``.

The clock is injectable so tests need not sleep. Not thread-safe: one asyncio loop owns it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

State = Literal["closed", "open", "half_open"]
STATE_VALUES: dict[State, int] = {"closed": 0, "open": 1, "half_open": 2}


class BreakerOpen(Exception):
    """The subsystem's breaker is open: the call was not made."""


class CircuitBreaker:
    """Counts consecutive failures and decides whether a call may be made."""

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_seconds: float = 10.0,
        half_open_probes: int = 1,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[State], None] | None = None,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self.half_open_probes = half_open_probes
        self._clock = clock
        self._on_change = on_change
        self._state: State = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._probes = 0

    @property
    def state(self) -> State:
        if self._state == "open" and self._clock() - self._opened_at >= self.reset_seconds:
            self._set("half_open")
            self._probes = 0
        return self._state

    def _set(self, state: State) -> None:
        if state != self._state:
            self._state = state
            if self._on_change is not None:
                self._on_change(state)

    def allow(self) -> bool:
        """May a call be made now? In half-open, each True takes one probe slot."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and self._probes < self.half_open_probes:
            self._probes += 1
            return True
        return False

    def record_success(self) -> None:
        self._failures = 0
        self._set("closed")

    def record_failure(self) -> None:
        self._failures += 1
        if self._state == "half_open" or self._failures >= self.failure_threshold:
            self._opened_at = self._clock()
            self._set("open")
