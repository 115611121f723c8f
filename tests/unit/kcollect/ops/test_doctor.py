"""kcollect doctor's advice from measured facts (pure; no broker)."""

from __future__ import annotations

from kcollect.ops.doctor import (
    DeadLetterFacts,
    Facts,
    RunFacts,
    StageFacts,
    advise,
    growth_advice,
    member_advice,
    needed_consumers,
    run_advice,
    slot_advice,
)


def stage(**changes: object) -> StageFacts:
    base: dict[str, object] = {
        "stage": "processor",
        "group": "kcollect-processor",
        "topic": "kcollect.requests",
        "partitions": 8,
        "members": 2,
        "lag_before": 0,
        "lag_after": 0,
        "consumed_per_s": 1000.0,
        "produced_per_s": 1000.0,
        "oldest_age_seconds": 0.0,
        "slots_per_member": 2000,
    }
    base.update(changes)
    return StageFacts(**base)  # type: ignore[arg-type]


def test_healthy_pipeline_says_so() -> None:
    findings = advise(Facts(5.0, [stage(), stage(stage="sink")]))
    assert findings[0].level == "ok" and findings[0].title == "every stage keeps up"
    assert not [f for f in findings if f.level in ("warn", "act")]


def test_growing_lag_asks_for_more_consumers_computed_from_the_rates() -> None:
    grow = stage(lag_before=10_000, lag_after=25_000, consumed_per_s=2_000.0, produced_per_s=5_000.0)
    finding = growth_advice(grow)
    assert finding is not None and finding.level == "act"
    assert "grows 3,000/s" in finding.detail[0]
    assert "2.5x" in finding.detail[1] and "~1,000/s each" in finding.detail[1]
    assert finding.detail[2].startswith("add processor processes: run 5")
    assert needed_consumers(2, 2000.0, 5000.0) == 5
    assert needed_consumers(2, 0.0, 5000.0) == 2


def test_more_consumers_than_partitions_asks_for_partitions() -> None:
    grow = stage(partitions=4, lag_before=1, lag_after=9, consumed_per_s=1000.0, produced_per_s=4000.0)
    finding = growth_advice(grow)
    assert (
        finding is not None
        and "8 consumers needed but kcollect.requests has 4 partitions" in finding.detail[2]
    )


def test_unknown_membership_speaks_in_factors() -> None:
    grow = stage(members=None, lag_before=1, lag_after=9, consumed_per_s=1000.0, produced_per_s=3000.0)
    finding = growth_advice(grow)
    assert finding is not None and finding.detail[2].startswith("run 3.0x as many processor processes")
    member = member_advice(stage(members=None))
    assert member is not None and "does not list group members" in member.title


def test_draining_gives_an_eta_and_nothing_consumed_is_flagged() -> None:
    drain = growth_advice(stage(lag_before=5000, lag_after=4000, consumed_per_s=1200.0, produced_per_s=200.0))
    assert drain is not None and drain.level == "info" and "~4 s" in drain.title
    stuck = growth_advice(stage(lag_before=50, lag_after=50, consumed_per_s=0.0, stuck_partitions=3))
    assert stuck is not None and stuck.level == "act" and "3 partition(s) stalled" in stuck.detail[0]


def test_schedule_to_start_latency_and_free_slots() -> None:
    findings = advise(Facts(5.0, [stage(lag_before=9000, lag_after=9000, oldest_age_seconds=95.0)]))
    titles = [f.title for f in findings]
    assert "processor: schedule-to-start latency 95 s" in titles
    slots = slot_advice(stage(lag_after=1000))
    assert slots is not None and slots.title == "processor: 3,000 free slots of 4,000 (75%)"
    full = slot_advice(stage(lag_before=4000, lag_after=5000))
    assert full is not None and full.level == "warn" and "5,000" not in full.title
    assert "1,000 waiting" in full.title


def test_idle_members_beyond_the_partition_count() -> None:
    finding = member_advice(stage(members=10, partitions=8))
    assert finding is not None and finding.level == "warn" and "2 idle member(s)" in finding.title
    assert member_advice(stage(members=8, partitions=8)) is None


def test_dead_letters_and_run_eta() -> None:
    facts = Facts(
        5.0,
        [stage()],
        [DeadLetterFacts("kcollect.requests.dlq", 120, 4.0), DeadLetterFacts("kcollect.results.dlq", 0, 0.0)],
        RunFacts("r1", 700_000, 400_000, 30_000.0),
    )
    findings = advise(facts)
    assert findings[0].level == "act" and "kcollect.requests.dlq +4.0/s" in findings[0].title
    assert any(f.title == "run r1: 400,000/700,000 done, ETA ~10 s at 30,000/s" for f in findings)
    assert not any("results.dlq" in f.title for f in findings)
    stuck = run_advice(RunFacts("r2", 10, 5, 0.0))
    assert stuck is not None and stuck.level == "warn"
    complete = run_advice(RunFacts("r3", 10, 10, 0.0))
    assert complete is not None and complete.level == "ok"
