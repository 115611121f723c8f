"""The pure lag arithmetic of streams.lag.probe and the throttle's hysteresis (no broker needed)."""

from __future__ import annotations

import pytest

from producers.enqueue.throttle import Hysteresis
from streams.kafka.end_offsets import true_end
from streams.lag.probe import partition_lag


def test_true_end_on_tansu_takes_what_the_tail_read_saw() -> None:
    # Tansu: 50,000 records in batches of 10,000 -> ListOffsets answers 40,001 (last batch base + 1).
    assert true_end(40001, last_seen_offset=49999, eof_offset=50000) == 50000
    assert true_end(40001, last_seen_offset=49999, eof_offset=None) == 50000
    assert true_end(1, last_seen_offset=None, eof_offset=7) == 7


def test_true_end_on_kafka_keeps_the_exact_high_watermark() -> None:
    assert true_end(50000, last_seen_offset=49999, eof_offset=50000) == 50000
    # the last offset is a control record (transaction marker): the high watermark is larger
    assert true_end(50001, last_seen_offset=49999, eof_offset=50001) == 50001
    assert true_end(0, last_seen_offset=None, eof_offset=None) == 0
    assert true_end(10, last_seen_offset=None, eof_offset=-1001) == 10  # an invalid EOF offset is ignored


def test_partition_lag() -> None:
    assert partition_lag(committed=100, end=250) == 150
    assert partition_lag(committed=None, end=250) == 250  # nothing committed: from the log start
    assert partition_lag(committed=-1001, end=250, low=50) == 200
    assert partition_lag(committed=10, end=250, low=50) == 200  # committed before the log start
    assert partition_lag(committed=300, end=250) == 0  # never negative (e.g. an under-reported end)


def test_hysteresis_pauses_at_max_and_resumes_at_the_lower_mark() -> None:
    gate = Hysteresis.of(2000)
    assert gate.resume_lag == 1000
    assert not gate.update(0) and gate.budget(0) == 2000
    assert not gate.update(1999) and gate.budget(1999) == 1
    assert gate.update(2000) and gate.budget(2000) == 0
    assert gate.update(1500)  # still above the resume mark
    assert gate.update(1001)
    assert not gate.update(1000) and gate.budget(1000) == 1000
    assert not gate.update(1500)  # below max again: keep producing
    assert gate.update(2500)


def test_hysteresis_custom_resume_and_bad_values() -> None:
    gate = Hysteresis.of(100, resume_lag=10)
    assert gate.update(100) and gate.update(50) and not gate.update(10)
    for max_lag, resume in ((0, None), (100, 100), (100, -1)):
        with pytest.raises(ValueError):
            Hysteresis.of(max_lag, resume)


def test_the_enqueue_throttle_gives_up_after_its_max_wait() -> None:
    import pytest

    from producers.enqueue.progress import NullReporter
    from producers.enqueue.throttle import EnqueueThrottle, ThrottleTimeout

    class StuckLag:
        def total(self) -> int:
            return 5000  # the processors never catch up

        def close(self) -> None:
            pass

    clock = [0.0]

    def wait(seconds: float) -> None:
        clock[0] += seconds

    throttle = EnqueueThrottle(
        StuckLag(),  # type: ignore[arg-type]
        Hysteresis.of(1000),
        NullReporter(),
        wait,
        max_wait_seconds=60,
        clock=lambda: clock[0],
    )
    with pytest.raises(ThrottleTimeout, match="60 s"):
        throttle.allowance()
    assert 60 <= clock[0] < 61
