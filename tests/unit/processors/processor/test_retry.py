"""Backoff with jitter and Retry-After; the retry-topic delay; the retry gate."""

from __future__ import annotations

import random
from typing import Any

from processors.processor.retry import Backoff, retry_delay_ms
from processors.processor.retry_gate import RetryGate


def test_backoff_grows_exponentially_and_is_capped() -> None:
    backoff = Backoff(0.1, 1.0, jitter=False)
    assert [backoff.delay(a) for a in range(1, 6)] == [0.1, 0.2, 0.4, 0.8, 1.0]


def test_jitter_stays_between_half_and_full_delay() -> None:
    backoff = Backoff(0.1, 10.0)
    rng = random.Random(3)
    delays = [backoff.delay(3, rng=rng) for _ in range(500)]
    assert all(0.2 <= d <= 0.4 for d in delays)
    assert max(delays) - min(delays) > 0.15  # actually spread


def test_retry_after_wins_when_longer_but_is_capped() -> None:
    backoff = Backoff(0.1, 2.0, jitter=False)
    assert backoff.delay(1, retry_after=1.5) == 1.5
    assert backoff.delay(1, retry_after=0.01) == 0.1
    assert backoff.delay(1, retry_after=60) == 2.0


def test_retry_topic_delay() -> None:
    assert [retry_delay_ms(a, 1000, 5000) for a in (1, 2, 3, 4)] == [1000, 2000, 4000, 5000]


class Msg:
    def __init__(self, topic: str, partition: int, offset: int, not_before: int | None = None) -> None:
        self._t, self._p, self._o = topic, partition, offset
        self._h = [] if not_before is None else [("not_before_ms", str(not_before).encode())]

    def topic(self) -> str:
        return self._t

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o

    def headers(self) -> list[tuple[str, bytes]]:
        return self._h


def test_gate_holds_a_partition_from_its_first_record_not_due() -> None:
    now = [1000.0]
    gate = RetryGate("retry", clock=lambda: now[0])
    msgs: list[Any] = [
        Msg("req", 0, 1),
        Msg("retry", 0, 5, 999_000),  # due
        Msg("retry", 0, 6, 1_002_000),  # not due: held, and everything after it on the partition
        Msg("retry", 0, 7, 1_000_000),
        Msg("retry", 1, 3, 1_000_500),  # other partition: held on its own
        Msg("req", 1, 9),
    ]
    ready = gate.admit(msgs)
    assert [(m.topic(), m.offset()) for m in ready] == [("req", 1), ("retry", 5), ("req", 9)]
    assert gate.held_partitions() == {("retry", 0), ("retry", 1)}
    assert gate.due() == []
    now[0] = 1000.6
    released = gate.due()
    assert [m.offset() for m in released] == [3]
    assert gate.held_partitions() == {("retry", 0)}
    now[0] = 1002.0
    again = gate.admit(gate.due())
    assert [m.offset() for m in again] == [6, 7]
    assert gate.held_partitions() == set()


def test_gate_passes_other_topics_untouched_and_drops_revoked() -> None:
    gate = RetryGate("retry", clock=lambda: 0.0)
    plain: list[Any] = [Msg("req", 0, i) for i in range(3)]
    assert gate.admit(plain) is plain
    gate.admit([Msg("retry", 2, 0, 10**12)])
    gate.drop({("retry", 2)})
    assert gate.held_partitions() == set()


def test_a_far_future_not_before_waits_at_most_max_wait_and_an_absurd_one_is_not_held() -> None:
    now = [1000.0]
    gate = RetryGate("retry", clock=lambda: now[0], max_wait_ms=2000)
    far = Msg("retry", 0, 1, 1_000_000 + 3600_000)  # an hour ahead: beyond what a retry may wait
    absurd = Msg("retry", 1, 4, 1_000_000 + 400 * 86_400_000)  # a year ahead: a garbage header
    ready = gate.admit([far, absurd])
    assert [m.offset() for m in ready] == [4]
    assert gate.out_of_range(ready) == [0]
    assert gate.held_partitions() == {("retry", 0)}
    now[0] = 1002.0  # max_wait later: released although its header says an hour
    assert [m.offset() for m in gate.due()] == [1]
    assert gate.out_of_range([far]) == []


def test_the_decoder_dead_letters_a_retry_record_with_an_absurd_not_before() -> None:
    import orjson

    from processors.processor.dead_letters import FailureGuard
    from processors.processor.steps import RequestDecoder
    from streams.steps.strategy import Batch
    from tests.unit.processors.processor.test_dead_letters import _DeadLetters

    class Valued(Msg):
        def value(self) -> bytes:
            return orjson.dumps({"v": 1, "run_id": "r", "client_id": f"c{self._o}", "requested_at_ms": 1})

    now_ms = int(__import__("time").time() * 1000)
    gate = RetryGate("retry", max_wait_ms=2000)
    dead = _DeadLetters()
    decoder = RequestDecoder(dead, FailureGuard(), gate)  # type: ignore[arg-type]
    msgs: list[Any] = [Valued("retry", 0, 1, now_ms + 400 * 86_400_000), Valued("retry", 0, 2, now_ms)]
    decoded = decoder(Batch(msgs, {}))
    assert [r["client_id"] for r in decoded.payload.requests] == ["c2"]
    assert dead.reasons == ["not_before_out_of_range"]
