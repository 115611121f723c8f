"""Burrow-style evaluation over a sliding window (streams.lag.status) and the lag gate's hysteresis."""

from __future__ import annotations

import itertools

import pytest

from streams.lag.gate import LagGate, next_paused
from streams.lag.status import LagTracker, Rules, Sample, Status, evaluate, worst
from streams.settings.model import load_settings
from streams.settings.names import SettingsError


def window(*points: tuple[int | None, int]) -> list[Sample]:
    """Samples one second apart from (committed, lag) pairs."""
    return [Sample(float(i), committed, lag) for i, (committed, lag) in enumerate(points)]


def status(points: list[Sample], present: bool | None = True, moved: float | None = 0.0) -> Status:
    return evaluate(
        points, now=points[-1].at if points else 0.0, last_moved_at=moved, consumer_present=present
    )


def test_ok_when_caught_up_or_any_zero_lag_in_the_window() -> None:
    assert status([]) is Status.OK
    assert status(window((10, 0))) is Status.OK
    assert status(window((5, 0), (5, 3), (5, 3))) is Status.OK  # caught up within the window
    assert status(window((5, 3), (5, 3), (8, 0)), present=False) is Status.OK


def test_stalled_when_the_committed_offset_does_not_move() -> None:
    assert status(window((5, 3), (5, 3), (5, 7))) is Status.STALLED
    assert status(window((None, 3), (None, 3))) is Status.STALLED  # never committed


def test_one_sample_is_not_enough_evidence() -> None:
    assert status(window((5, 3))) is Status.OK


def test_stopped_when_the_consumer_is_gone_or_no_commit_for_a_while() -> None:
    assert status(window((5, 3)), present=False) is Status.STOPPED
    assert status(window((5, 3), (5, 3)), present=False) is Status.STOPPED
    late = evaluate(window((5, 3), (5, 3)), now=400.0, last_moved_at=0.0, consumer_present=None)
    assert late is Status.STOPPED
    assert status(window((5, 3), (5, 3)), present=None) is Status.STALLED  # membership unknown (Tansu)


def test_warning_when_commits_move_but_lag_grows_at_every_step() -> None:
    assert status(window((5, 3), (6, 4), (8, 9))) is Status.WARNING
    assert status(window((5, 3), (6, 4), (8, 4))) is Status.WARNING  # fixed at the end, up overall
    assert status(window((5, 3), (6, 3), (8, 3))) is Status.OK  # keeping up with a constant lag
    assert status(window((5, 3), (6, 9), (9, 4))) is Status.OK  # went down at one step


def test_unmeasured_when_the_latest_sample_failed() -> None:
    points = [*window((5, 3), (5, 3)), Sample(2.0, None, 0, "broker away")]
    assert status(points) is Status.UNMEASURED
    assert status([*points, Sample(3.0, 5, 3)]) is Status.STALLED  # errors are left out of the rules


def test_worst_and_order() -> None:
    assert worst([]) is Status.OK
    assert worst([Status.OK, Status.STALLED, Status.WARNING]) is Status.STALLED
    assert sorted(Status, reverse=True)[0] is Status.UNMEASURED
    assert "ERROR" not in Status.__members__  # not to be read as Burrow's ERR (a stopped consumer)


def test_rewind_when_a_committed_offset_moves_backwards() -> None:
    assert status(window((50, 3), (60, 3), (10, 53))) is Status.REWIND
    assert status(window((50, 0), (10, 40), (50, 0))) is Status.REWIND  # caught up again: still flagged
    assert status(window((50, 3), (10, 43)), present=False) is Status.REWIND
    assert status(window((10, 3), (None, 13), (9, 4))) is Status.REWIND  # a sample without a commit between
    assert status(window((10, 3), (10, 3), (11, 2))) is Status.OK  # forwards only
    failed = [*window((50, 3)), Sample(1.0, None, 0, "broker away"), Sample(2.0, 40, 13)]
    assert status(failed) is Status.REWIND  # a failed sample between does not hide it


def test_rewind_leaves_with_the_window() -> None:
    tracker = LagTracker(size=3)
    key = ("g", "t", 0)
    for t, committed in enumerate([50, 10, 11, 12, 13]):
        tracker.observe(key, Sample(float(t), committed, 5))
        expected = Status.REWIND if t in (1, 2) else Status.OK
        assert tracker.status(key, now=float(t)) is expected, t


def test_tracker_slides_and_remembers_when_the_offset_last_moved() -> None:
    tracker = LagTracker(size=3, rules=Rules(min_samples=2, stopped_after=10.0))
    key = ("g", "t", 0)
    clock = itertools.count()
    for committed, lag in [(1, 5), (2, 5), (3, 5), (3, 5)]:
        tracker.observe(key, Sample(float(next(clock)), committed, lag))
    assert len(tracker.window(key)) == 3
    assert tracker.status(key, now=3.0) is Status.OK  # offsets moved within the window
    for t in range(4, 7):
        tracker.observe(key, Sample(float(t), 3, 5))
    assert tracker.status(key, now=6.0) is Status.STALLED
    tracker.observe(key, Sample(13.0, 3, 5))
    assert tracker.status(key, now=13.0) is Status.STOPPED  # unmoved since t=2, over 10 s
    tracker.observe(key, Sample(14.0, 4, 4))
    assert tracker.status(key, now=14.0) is Status.OK
    assert tracker.status(("other",), now=1.0) is Status.OK
    tracker.forget_except([])
    assert tracker.window(key) == []
    with pytest.raises(ValueError):
        LagTracker(size=0)


def test_gate_hysteresis() -> None:
    lags = [0, 600, 1200, 400, 200, 100, 99, 400, 501]
    states, paused = [], False
    for lag in lags:
        paused = next_paused(paused, lag, high=500, low=100)
        states.append(paused)
    assert states == [False, True, True, True, True, False, False, False, True]


class FailingProbe:
    def total(self) -> int:
        raise RuntimeError("broker away")

    def close(self) -> None:
        pass


class FixedProbe:
    def __init__(self, lag: int) -> None:
        self.lag = lag

    def total(self) -> int:
        return self.lag

    def close(self) -> None:
        pass


def test_gate_keeps_its_state_on_errors_then_fails_open() -> None:
    settings = load_settings(bootstrap_servers="127.0.0.1:1")
    probe: FixedProbe | FailingProbe = FixedProbe(1000)
    gate = LagGate(settings, "g", "t", 10, 2, interval=3600, stale_after=0.0, probe_factory=lambda: probe)
    try:
        gate.measure_once()
        assert gate.paused() and gate.lag == 1000
        probe = FailingProbe()
        gate._probe = None
        gate.stale_after = 3600
        gate.measure_once()
        assert gate.paused()  # one failure: the last state holds
        gate.stale_after = 0.0
        gate.measure_once()
        assert not gate.paused()  # no measurement for too long: open
    finally:
        gate.close()
    with pytest.raises(ValueError):
        LagGate(settings, "g", "t", 10, 10, probe_factory=lambda: FixedProbe(0))
    with pytest.raises(SettingsError, match=r"KCOLLECT_RESULTS_LAG_LOW \(10\) must be below"):
        load_settings(bootstrap_servers="127.0.0.1:1", results_lag_high=10, results_lag_low=10)
    load_settings(bootstrap_servers="127.0.0.1:1", results_lag_high=0, results_lag_low=10)  # gate off
