"""The scheduler's decisions (producers/scheduler/service.py) with manifests, enqueue and run status faked:
where it starts, missed slots, pause, manifests already there, and the overlap policies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

import producers.scheduler.service as scheduler_module
from producers.scheduler.schedule import Every, run_id
from producers.scheduler.service import Scheduler, SchedulerConfig
from schemas.models import RunManifest
from streams.settings.model import Settings


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass
class Progress:
    complete: bool
    processed: int = 0
    total: int | None = 10


class World:
    """Fake manifests, enqueue and run status; ``now`` is the scheduler's clock."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = t("2026-11-23T12:00:30")
        self.manifests: dict[str, RunManifest] = {}
        self.enqueued: list[str] = []
        self.complete: dict[str, bool] = {}
        monkeypatch.setattr(scheduler_module, "read_manifests", lambda settings: dict(self.manifests))
        monkeypatch.setattr(scheduler_module, "enqueue_run", self.enqueue)
        import streams.runs.status as runs_status

        monkeypatch.setattr(runs_status, "run_status", lambda s, r: Progress(self.complete.get(r, False)))

    def manifest(self, rid: str, status: str = "enqueued") -> None:
        self.manifests[rid] = RunManifest(
            run_id=rid,
            source="range",
            status=status,
            requested_at_ms=1,
            created_at_ms=1,  # type: ignore[arg-type]
        )

    def enqueue(
        self, settings: Any, rid: str, source: Any, requested_at_ms: int, deadline: Any = None
    ) -> Any:
        self.enqueued.append(rid)
        self.manifest(rid)

        class Summary:
            enqueued, seconds = 10, 0.1

        return Summary()

    def scheduler(self, **config: Any) -> Scheduler:
        cfg = SchedulerConfig("s", Every(60), **config)
        return Scheduler(Settings(), cfg, lambda: None, clock=lambda: self.now)  # type: ignore[arg-type,return-value]


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    return World(monkeypatch)


def test_first_start_waits_for_the_next_slot(world: World) -> None:
    sched = world.scheduler(overlap="allow")
    sched.turn(paused=False)
    assert world.enqueued == []
    world.now = t("2026-11-23T12:01:05")
    sched.turn(paused=False)
    sched.turn(paused=False)  # the same slot again: nothing more
    assert world.enqueued == ["s-20261123T120100Z"]


def test_restart_after_downtime_enqueues_the_latest_missed_slot_once(world: World) -> None:
    world.manifest("s-20261123T115500Z")
    sched = world.scheduler(overlap="allow")
    sched.turn(paused=False)
    assert world.enqueued == ["s-20261123T120000Z"]
    assert sched.stats.skipped == [f"s-20261123T11{m}00Z" for m in ("56", "57", "58", "59")]


def test_catch_up_skip_leaves_a_stale_slot(world: World) -> None:
    world.manifest("s-20261123T115500Z")
    world.now = t("2026-11-23T12:03:30")
    sched = world.scheduler(overlap="allow", catch_up="skip", grace=10)
    sched.turn(paused=False)
    assert world.enqueued == []
    world.now = t("2026-11-23T12:04:02")
    sched.turn(paused=False)
    assert world.enqueued == ["s-20261123T120400Z"]


def test_a_slot_already_enqueued_elsewhere_is_not_enqueued_again(world: World) -> None:
    sched = world.scheduler(overlap="allow")
    sched.turn(paused=False)
    world.now = t("2026-11-23T12:01:05")
    world.manifest("s-20261123T120100Z")  # another instance was faster
    sched.turn(paused=False)
    assert world.enqueued == []


def test_an_interrupted_enqueue_is_completed(world: World) -> None:
    world.manifest("s-20261123T120000Z", "enqueueing")
    world.now = t("2026-11-23T12:00:50")
    sched = world.scheduler(overlap="allow")
    sched.last_handled = t("2026-11-23T11:59:00")
    sched.turn(paused=False)
    assert world.enqueued == ["s-20261123T120000Z"]


def test_paused_schedule_skips(world: World) -> None:
    sched = world.scheduler(overlap="allow")
    sched.turn(paused=True)
    world.now = t("2026-11-23T12:01:05")
    sched.turn(paused=True)
    assert world.enqueued == [] and sched.stats.skipped == ["s-20261123T120100Z"]
    world.now = t("2026-11-23T12:02:05")
    sched.turn(paused=False)
    assert world.enqueued == ["s-20261123T120200Z"]


def test_overlap_skip(world: World) -> None:
    world.manifest("s-20261123T120000Z")
    world.now = t("2026-11-23T12:01:05")
    sched = world.scheduler(overlap="skip")
    sched.last_handled = t("2026-11-23T12:00:00")
    sched.turn(paused=False)
    assert world.enqueued == [] and sched.stats.skipped == ["s-20261123T120100Z"]
    world.complete["s-20261123T120000Z"] = True
    world.now = t("2026-11-23T12:02:05")
    sched.turn(paused=False)
    assert world.enqueued == ["s-20261123T120200Z"]


def test_overlap_queue_holds_one_slot_until_the_previous_run_completes(world: World) -> None:
    world.manifest("s-20261123T120000Z")
    world.now = t("2026-11-23T12:01:05")
    sched = world.scheduler(overlap="queue")
    sched.last_handled = t("2026-11-23T12:00:00")
    sched.turn(paused=False)
    assert world.enqueued == [] and sched.queued == t("2026-11-23T12:01:00")
    world.now = t("2026-11-23T12:02:05")
    sched.turn(paused=False)  # a newer slot replaces the queued one
    assert sched.queued == t("2026-11-23T12:02:00") and sched.stats.skipped == ["s-20261123T120100Z"]
    world.complete["s-20261123T120000Z"] = True
    world.now = t("2026-11-23T12:02:40")
    sched.turn(paused=False)
    assert world.enqueued == [run_id("s", t("2026-11-23T12:02:00"))] and sched.queued is None


def test_a_failed_previous_run_does_not_block(world: World) -> None:
    world.manifest("s-20261123T120000Z", "failed")
    world.now = t("2026-11-23T12:01:05")
    sched = world.scheduler(overlap="skip")
    sched.last_handled = t("2026-11-23T12:00:00")
    sched.turn(paused=False)
    assert world.enqueued == ["s-20261123T120100Z"]


def test_the_scheduler_gives_each_run_a_deadline_of_its_slot_plus_the_period(world: World) -> None:
    deadlines: dict[str, int | None] = {}

    def enqueue(settings: Any, rid: str, source: Any, requested_at_ms: int, deadline: Any = None) -> Any:
        deadlines[rid] = None if deadline is None else deadline.resolve(requested_at_ms)
        return world.enqueue(settings, rid, source, requested_at_ms)

    scheduler_module.enqueue_run = enqueue  # type: ignore[assignment]  # undone by the fixture's monkeypatch
    world.now = t("2026-11-23T12:01:05")
    sched = world.scheduler(overlap="allow")
    sched.last_handled = t("2026-11-23T12:00:00")
    sched.turn(paused=False)
    slot_ms = int(t("2026-11-23T12:01:00").timestamp() * 1000)
    assert deadlines == {"s-20261123T120100Z": slot_ms + 60_000}
    world.now = t("2026-11-23T12:02:05")
    custom = world.scheduler(overlap="allow", deadline="10m")
    custom.last_handled = t("2026-11-23T12:01:00")
    custom.turn(paused=False)
    assert deadlines["s-20261123T120200Z"] == slot_ms + 60_000 + 600_000
    world.now = t("2026-11-23T12:03:05")
    none = world.scheduler(overlap="allow", deadline="none")
    none.last_handled = t("2026-11-23T12:02:00")
    none.turn(paused=False)
    assert deadlines["s-20261123T120300Z"] is None


@pytest.mark.parametrize("overlap", ["skip", "queue", "allow"])
def test_the_overdue_gauge_says_whether_the_previous_run_was_complete_at_the_next_slot(
    world: World, overlap: str
) -> None:
    from prometheus_client import REGISTRY

    def overdue() -> float | None:
        return REGISTRY.get_sample_value("kcollect_scheduler_previous_run_incomplete", {"schedule": "s"})

    world.manifest("s-20261123T120000Z")
    world.now = t("2026-11-23T12:01:05")
    sched = world.scheduler(overlap=overlap)
    sched.last_handled = t("2026-11-23T12:00:00")
    sched.turn(paused=False)
    assert overdue() == 1.0  # whatever the policy did with the slot (allow: enqueued it anyway)
    assert (world.enqueued == ["s-20261123T120100Z"]) is (overlap == "allow")
    world.complete["s-20261123T120000Z"] = True
    world.complete["s-20261123T120100Z"] = True
    world.now = t("2026-11-23T12:02:05")
    sched.turn(paused=False)
    assert overdue() == 0.0
