"""The DLQ guard: stop when more than 90% of the last 1000 requests were dead-lettered."""

from __future__ import annotations

import pytest

from processors.processor.dead_letters import FailureGuard, ProcessorFailing


def test_guard_trips_only_over_a_full_window() -> None:
    guard = FailureGuard(window=1000, ratio=0.9)
    guard.record(500, 500)  # 100% but under the window: no decision yet
    with pytest.raises(ProcessorFailing, match="dead-lettered"):
        guard.record(500, 460)


def test_guard_forgets_old_batches() -> None:
    guard = FailureGuard(window=1000, ratio=0.9)
    guard.record(1000, 100)
    for _ in range(20):
        guard.record(100, 89)  # 89% per batch, old good batch slides out
    guard.record(0, 0)


def test_dead_letters_counted_later_add_to_their_batch_share() -> None:
    guard = FailureGuard(window=100, ratio=0.5)
    guard.record(100, 10)
    with pytest.raises(ProcessorFailing):
        guard.record(0, 50)  # fetch failures of the same records, reported by the produce step
