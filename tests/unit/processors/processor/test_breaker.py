"""The circuit breaker: closed -> open -> half-open probe -> closed or open again."""

from __future__ import annotations

from processors.processor.breaker import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_consecutive_failures_only() -> None:
    breaker = CircuitBreaker(failure_threshold=3, reset_seconds=10, clock=Clock())
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()  # resets the count
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state == "closed" and breaker.allow()
    breaker.record_failure()
    assert breaker.state == "open" and not breaker.allow()


def test_half_open_probe_success_closes() -> None:
    clock = Clock()
    changes: list[str] = []
    breaker = CircuitBreaker(2, 5.0, clock=clock, on_change=changes.append)
    breaker.record_failure()
    breaker.record_failure()
    clock.now += 4.9
    assert not breaker.allow()
    clock.now += 0.2
    assert breaker.state == "half_open"
    assert breaker.allow()  # the one probe
    assert not breaker.allow()  # no second probe while the first is out
    breaker.record_success()
    assert breaker.state == "closed" and breaker.allow()
    assert changes == ["open", "half_open", "closed"]


def test_half_open_probe_failure_reopens_for_another_period() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 5.0, clock=clock)
    breaker.record_failure()
    clock.now += 5
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state == "open"
    clock.now += 4
    assert not breaker.allow()
    clock.now += 1
    assert breaker.allow()


def test_several_probes_when_configured() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 1.0, half_open_probes=2, clock=clock)
    breaker.record_failure()
    clock.now += 1
    assert breaker.allow() and breaker.allow() and not breaker.allow()
