"""The fault campaign's pure parts: schedules (tests/chaos/schedule.py), the dead-letter accounting
(tests/chaos/runner.py) and the results summary."""

from __future__ import annotations

from collections import Counter

from streams.runs.checker import RunDeadLetter
from tests.chaos.runner import Planted, dead_letter_accounting
from tests.chaos.schedule import Schedule, Shape, make_schedule
from tests.chaos.summary import summarize

KINDS = {
    "kill9",
    "sigterm",
    "sigstop",
    "crash",
    "join",
    "broker_pause",
    "clickhouse_stop",
    "garbage",
    "subsystem",
    "enqueue",
}


def test_a_seed_always_gives_the_same_schedule_and_its_json_replays_it() -> None:
    for seed in range(50):
        schedule = make_schedule(seed)
        assert make_schedule(seed) == schedule
        assert Schedule.from_json(schedule.to_json()) == schedule
    assert make_schedule(1) != make_schedule(2)


def test_every_schedule_has_a_process_fault_garbage_and_enqueues_covering_the_client_set() -> None:
    shape = Shape()
    for seed in range(200):
        schedule = make_schedule(seed, shape)
        kinds = Counter(f.kind for f in schedule.faults)
        assert kinds["garbage"] >= 1 and kinds["enqueue"] >= 1, schedule.to_json()
        assert kinds["kill9"] + kinds["sigterm"] + kinds["sigstop"] >= 1, schedule.to_json()
        assert schedule.clients() == {str(c) for c in range(shape.clients)}
        gates = [f.after_stored for f in schedule.faults]
        assert gates == sorted(gates) and max(gates) < shape.first_enqueue
        assert schedule.garbage("requests") + schedule.garbage("results") >= 1
        for fault in schedule.faults:
            assert fault.kind in KINDS and fault.duration >= 0 and fault.at >= 0


def test_two_hundred_seeds_cover_every_kind_of_fault_and_every_subsystem_mode() -> None:
    faults = [f for seed in range(200) for f in make_schedule(seed).faults]
    assert {f.kind for f in faults} == KINDS
    modes = {f.params["mode"] for f in faults if f.kind == "subsystem"}
    assert modes == {"error", "rate_limit", "slow", "garbage", "outage"}
    assert {f.target for f in faults if f.kind == "garbage"} == {"requests", "results"}
    assert any(f.kind == "garbage" and f.after_stored == 0 and f.at == 0 for f in faults)


def test_the_summary_counts_passes_in_a_row_and_faults_by_kind() -> None:
    lines: list[dict[str, object]] = [
        {"seed": 1, "problems": [], "wall_seconds": 30, "faults": ["kill9:sink0", "garbage:results at x"]},
        {"seed": 2, "problems": ["1 lost"], "wall_seconds": 40, "faults": ["kill9:processor1"]},
        {"seed": 3, "problems": [], "wall_seconds": 20, "faults": []},
        {"seed": 4, "problems": [], "wall_seconds": 25, "faults": []},
    ]
    text = summarize(lines)
    assert "seeds: 4, passed: 3, longest run of passes in a row: 2" in text
    assert "garbage 1, kill9 2" in text and "failed 2: ['1 lost']" in text


def letter(place: tuple[str, int, int], **headers: str) -> RunDeadLetter:
    base = {"error_class": "CodecError", "stage": "decode", "original_offset": str(place[2])}
    return RunDeadLetter("t.requests.dlq", "k", "decode", "CodecError", place, base | headers)


def test_the_dead_letter_accounting_fails_on_every_kind_of_miscount() -> None:
    planted = [Planted("t.requests", "bad-0", True, 0, 5), Planted("t.results", "bad-1", False, 3, 0)]
    good = [letter(("t.requests", 0, 5)), letter(("t.results", 3, 0))]
    assert dead_letter_accounting(planted, good, False, 1) == ([], 0)
    missing, _ = dead_letter_accounting(planted, good[:1], False, 1)
    assert missing == ["bad records never dead-lettered: ['bad-1']"]
    extra, _ = dead_letter_accounting(planted, [*good, letter(("t.requests", 1, 7))], False, 1)
    assert len(extra) == 1 and extra[0].startswith("1 dead letters of records that were not bad")
    twice = [*good, letter(("t.requests", 0, 5))]
    assert dead_letter_accounting(planted, twice, True, 1) == ([], 1)  # a replay after an unclean fault
    problems, count = dead_letter_accounting(planted, twice, False, 1)
    assert count == 1 and "more than once without an unclean fault" in problems[0]
    bare = [letter(("t.requests", 0, 5), stage=""), good[1]]
    assert dead_letter_accounting(planted, bare, False, 1)[0][0].startswith("dead letter of")
    assert dead_letter_accounting(planted, good, False, 0)[0] == [
        "0 dead letters of others naming the run, 1 planted"
    ]
