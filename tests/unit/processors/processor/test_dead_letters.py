"""The DLQ guard: stop when more than 90% of the last 1000 fetched requests failed and were dead-lettered."""

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


class _Msg:
    def __init__(self, value: bytes, offset: int) -> None:
        self._value, self._offset = value, offset

    def value(self) -> bytes:
        return self._value

    def topic(self) -> str:
        return "kcollect.requests"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def headers(self) -> None:
        return None


class _DeadLetters:
    """Counts the dead letters it is given (their production is tested against the broker)."""

    def __init__(self) -> None:
        self.reasons: list[str] = []

    def send(
        self, tracker: object, msg: object, error_class: str, error: str, stage: str, reason: str
    ) -> None:
        self.reasons.append(reason)


def test_a_backlog_of_malformed_and_expired_requests_does_not_trip_the_guard() -> None:
    from typing import Any

    import orjson

    from processors.processor.steps import RequestDecoder
    from streams.steps.strategy import Batch

    guard = FailureGuard(window=100, ratio=0.9)
    dead = _DeadLetters()
    decoder = RequestDecoder(dead, guard)  # type: ignore[arg-type]
    expired = orjson.dumps({"v": 1, "run_id": "r", "client_id": "c", "requested_at_ms": 1, "deadline_ms": 2})
    for start in range(0, 1000, 100):  # ten full windows: half expired, half garbage
        batch: list[Any] = [_Msg(expired if i % 2 else b"not json", start + i) for i in range(100)]
        assert decoder(Batch(batch, {})).payload.requests == []
    assert dead.reasons.count("expired") == 500 and dead.reasons.count("not_json") == 500
    guard.record(0, 0)  # still not tripped: the guard counts fetch failures of fetched requests only
    guard.record(100, 0)
    with pytest.raises(ProcessorFailing):
        guard.record(0, 95)  # a bad deploy: the fetches of those requests fail
