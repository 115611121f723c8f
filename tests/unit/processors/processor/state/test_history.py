"""The pure state math: deltas, increases and rates across runs; first sight, reset, gap, late; replays."""

from __future__ import annotations

from processors.processor.state.history import (
    FIRST_SIGHT,
    GAP,
    LATE,
    RESET,
    UNSCHEDULED,
    Clock,
    History,
    Observation,
    StateSpec,
    apply_run,
    decode_history,
    encode_history,
    is_stale,
    reason_names,
    unscheduled_outputs,
)

SPEC = StateSpec({"bytes": ("delta", "increase", "rate")}, keep_runs=3)
MINUTE = 60_000


def run(history: History, n: int, value: float, seq: int | None = None, spec: StateSpec = SPEC):  # type: ignore[no-untyped-def]
    return apply_run(history, f"s-{n}", n * MINUTE, seq if seq is not None else n, {"bytes": value}, spec)


def test_first_sight_gives_the_reason_and_no_numbers() -> None:
    step = run((), 1, 100.0)
    assert step.outputs == {"bytes_reason": float(FIRST_SIGHT)}
    assert step.history is not None and step.history[-1].values == {"bytes": 100.0}


def test_second_run_gives_exact_delta_increase_and_rate() -> None:
    first = run((), 1, 100.0).history
    assert first is not None
    step = run(first, 2, 700.0)
    assert step.outputs == {
        "bytes_delta": 600.0,
        "bytes_increase": 600.0,
        "bytes_rate": 10.0,
        "bytes_reason": 0.0,
    }


def test_a_lower_value_is_a_reset_counted_from_zero() -> None:
    history = run((), 1, 1000.0).history
    assert history is not None
    step = run(history, 2, 120.0)
    assert step.outputs == {
        "bytes_delta": -880.0,
        "bytes_increase": 120.0,
        "bytes_rate": 2.0,
        "bytes_reason": float(RESET),
    }


def test_a_missed_run_is_a_gap_over_the_whole_span() -> None:
    history = run((), 1, 0.0).history
    assert history is not None
    step = run(history, 3, 1200.0)  # run 2 numbered by the partition's clock, the client not in it
    assert step.outputs["bytes_reason"] == float(GAP)
    assert step.outputs["bytes_rate"] == 10.0  # 1200 over 120 s
    assert reason_names(float(GAP | RESET)) == ["reset", "gap"]


def test_handling_a_run_twice_gives_the_same_answer_and_state() -> None:
    h1 = run((), 1, 100.0).history
    assert h1 is not None
    once = run(h1, 2, 160.0)
    assert once.history is not None
    twice = run(once.history, 2, 160.0)
    assert twice.outputs == once.outputs
    assert twice.history is None  # unchanged
    assert encode_history(once.history) == encode_history(decode_history(encode_history(once.history)))


def test_a_replay_after_a_newer_run_is_still_computed_against_its_own_predecessor() -> None:
    history: History = ()
    outputs = {}
    for n, value in ((1, 100.0), (2, 160.0), (3, 400.0)):
        step = run(history, n, value)
        outputs[n] = step.outputs
        assert step.history is not None
        history = step.history
    replay = run(history, 2, 160.0)
    assert replay.outputs == outputs[2]
    assert replay.history is None


def test_a_late_run_is_flagged_and_changes_no_state() -> None:
    history: History = ()
    for n, value in ((1, 100.0), (2, 200.0), (3, 300.0), (5, 500.0)):
        step = run(history, n, value)
        assert step.history is not None
        history = step.history
    late = apply_run(history, "s-4", 4 * MINUTE, 0, {"bytes": 400.0}, SPEC)  # history keeps 2, 3, 5
    assert late.history is None
    assert late.outputs["bytes_reason"] == float(LATE)
    assert late.outputs["bytes_delta"] == 100.0  # against run 3, the newest older one
    too_old = apply_run(history, "s-0", 0, 0, {"bytes": 1.0}, SPEC)
    assert too_old.outputs == {"bytes_reason": float(LATE | FIRST_SIGHT)}


def test_history_is_bounded_and_missing_values_give_nothing() -> None:
    history: History = ()
    for n in range(1, 8):
        step = run(history, n, float(n))
        assert step.history is not None
        history = step.history
    assert [o.at_ms for o in history] == [5 * MINUTE, 6 * MINUTE, 7 * MINUTE]
    missing = apply_run(history, "s-8", 8 * MINUTE, 8, {"bytes": None}, SPEC)
    assert missing.outputs == {}
    assert unscheduled_outputs({"bytes": 3.0}, SPEC) == {"bytes_reason": float(UNSCHEDULED)}


def test_a_plugin_sees_the_previous_observation_and_its_outputs() -> None:
    def ewma(current: Observation, previous: Observation | None) -> dict[str, float]:
        before = (
            previous.computed.get("ewma", current.values["bytes"]) if previous else current.values["bytes"]
        )
        return {"ewma": 0.5 * before + 0.5 * current.values["bytes"]}

    spec = StateSpec({}, keep=("bytes",), plugin=ewma)
    h = run((), 1, 100.0, spec=spec)
    assert h.outputs == {"ewma": 100.0} and h.history is not None
    second = run(h.history, 2, 200.0, spec=spec)
    assert second.outputs == {"ewma": 150.0}


def test_clock_numbers_new_slots_and_keeps_replays() -> None:
    clock, seq, new = Clock().advance(MINUTE)
    assert (seq, new) == (1, True)
    clock, seq, new = clock.advance(2 * MINUTE)
    assert (seq, new) == (2, True)
    same, seq, new = clock.advance(MINUTE)
    assert (seq, new, same) == (1, False, clock)
    _, seq, new = clock.advance(MINUTE // 2)  # older than every slot it holds
    assert (seq, new) == (0, False)
    assert Clock.from_bytes(clock.to_bytes()) == clock


def test_stale_rule() -> None:
    obs = Observation("s-1", MINUTE, 1, {})
    assert not is_stale(obs, 11, 11 * MINUTE, 10, 3600_000)
    assert is_stale(obs, 12, 12 * MINUTE, 10, 3600_000)
    assert is_stale(obs, 2, 62 * MINUTE, 10, 3600_000)
