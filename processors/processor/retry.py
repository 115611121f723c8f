"""Retry policy: exponential backoff with full jitter, Retry-After honoured, and the retry-topic delay.

``backoff(attempt)`` is the pause before in-process retry ``attempt`` (1, 2, ...); ``RetryableError``
carries a server's ``Retry-After``, which wins when it is longer (capped by ``max_seconds``).
``retry_delay_ms(attempt)`` is how long a request waits on the retry topic before its next attempt.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


class FetchError(Exception):
    """A subsystem call failed. ``retryable`` says whether trying again may help."""

    retryable = True

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentFetchError(FetchError):
    """A failure that the same call will not fix (e.g. a response over the size cap)."""

    retryable = False


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff: ``base * 2**(attempt-1)`` capped at ``max_seconds``, with full jitter."""

    base_seconds: float = 0.1
    max_seconds: float = 5.0
    jitter: bool = True

    def delay(
        self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        ceiling = min(self.max_seconds, self.base_seconds * (2 ** max(0, attempt - 1)))
        delay = (rng or random).uniform(ceiling / 2, ceiling) if self.jitter else ceiling
        if retry_after is not None and retry_after > 0:
            delay = max(delay, min(retry_after, self.max_seconds))
        return delay


def retry_delay_ms(attempt: int, base_ms: int, max_ms: int) -> int:
    """The wait on the retry topic before ``attempt`` (1-based): doubling from ``base_ms``, capped."""
    return int(min(max_ms, base_ms * (2 ** max(0, attempt - 1))))
