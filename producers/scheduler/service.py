"""`kcollect scheduler run`: enqueue a run for every slot of a schedule, once, from any number of instances.

Each turn (``tick`` seconds) the instance serves its lock group (``producers.scheduler.lock``); only
the leader acts. It takes the slots due since the last one handled (``producers.scheduler.schedule.plan``:
missed slots after downtime follow ``catch_up``), waits out the slot's jitter, and then:

1. skips the slot if the schedule is paused;
2. reads the run manifests: a slot whose run is already ``enqueued`` is done (another instance, an
   earlier life of this one, or a backfill did it); ``enqueueing`` or ``failed`` is enqueued again,
   which completes it (same run id, same ``requested_at_ms``);
3. applies the overlap policy when the schedule's previous run is not complete yet
   (``streams.runs.status``: stored + dead-lettered vs the manifest's total): ``skip`` the slot,
   ``queue`` it (at most one; enqueued once the previous run completes; a newer slot replaces it), or
   ``allow`` it;
4. ``enqueue_run(run id = NAME-<slot>, requested_at_ms = the slot time, deadline)``: by default a
   run's requests expire when the next slot is due (the slot plus its period: ``--deadline period``);
   ``--deadline 10m`` gives the slot plus 10 minutes, ``--deadline none`` no deadline. The deadline is
   in the run's manifest and every request; what is still unprocessed then is dead-lettered
   (reason ``expired``), so a late backlog never competes with the next cycle.

Where it starts: the newest slot with a manifest of this schedule, or (no history) now: the first
start does not enqueue a slot that was already past. A failed enqueue is retried on the next turns.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prometheus_client import Counter, Gauge

from producers.enqueue.enqueue import enqueue_run
from producers.enqueue.sources import ClientSource
from producers.scheduler.lock import ScheduleLock
from producers.scheduler.schedule import (
    CatchUp,
    Schedule,
    jitter_seconds,
    parse_duration,
    plan,
    run_id,
    slot_of,
    utc,
)
from schemas.models import RunManifest
from streams.observability.health import HealthProbe
from streams.runs.identity import Deadline
from streams.runs.manifests import read_manifests
from streams.settings.model import Settings

log = logging.getLogger(__name__)
MAX_REMEMBERED = 100
ENQUEUED = Counter("kcollect_scheduler_runs_enqueued", "Runs the scheduler enqueued", ["schedule"])
SKIPPED = Counter("kcollect_scheduler_slots_skipped", "Slots skipped (missed, paused, overlap)", ["schedule"])
LEADER = Gauge("kcollect_scheduler_leader", "1 while this instance leads its schedule", ["schedule"])
LAST_SLOT = Gauge("kcollect_scheduler_last_slot_timestamp_seconds", "The newest slot handled", ["schedule"])
OVERDUE = Gauge(
    "kcollect_scheduler_previous_run_incomplete",
    "1 when the schedule's previous run was not complete at its latest slot (whatever the overlap policy)",
    ["schedule"],
)


@dataclass
class SchedulerConfig:
    name: str
    schedule: Schedule
    catch_up: CatchUp = "latest"
    overlap: str = "skip"  # skip | queue | allow
    jitter: float = 0.0
    tick: float = 1.0
    grace: float = 60.0  # catch_up=skip: a slot older than this is skipped
    deadline: str = "period"  # period (the next slot), none, or a duration after the slot

    def __post_init__(self) -> None:
        if self.deadline not in ("period", "none"):
            try:
                parse_duration(self.deadline)  # before any slot is run
            except ValueError as exc:
                raise ValueError(f"must be period, none or a duration after the slot: {exc}") from None

    def deadline_for(self, slot: datetime) -> Deadline | None:
        """When the run of ``slot`` expires (None: never)."""
        if self.deadline == "none":
            return None
        if self.deadline == "period":
            return Deadline(at_ms=int(self.schedule.next_after(slot).timestamp() * 1000))
        return Deadline(after_ms=parse_duration(self.deadline) * 1000)


@dataclass
class SchedulerStats:
    enqueued: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    errors: int = 0


def _now() -> datetime:
    return datetime.now(UTC)


class Scheduler:
    """One instance of a schedule; ``run(stop)`` until ``stop`` is set."""

    def __init__(
        self,
        settings: Settings,
        config: SchedulerConfig,
        source: Callable[[], ClientSource],
        probe: HealthProbe | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.settings, self.config, self.source, self.clock = settings, config, source, clock
        self.probe = probe or HealthProbe(require_assignment=False)
        self.stats = SchedulerStats()
        self.last_handled: datetime | None = None
        self.queued: datetime | None = None

    def run(self, stop: threading.Event) -> SchedulerStats:
        lock = ScheduleLock(self.settings, self.config.name, self.probe)
        log.info("scheduler %s started (%s, catch-up %s, overlap %s)", self.config.name,
                 self.config.schedule.describe(), self.config.catch_up, self.config.overlap)  # fmt: skip
        try:
            while not stop.is_set():
                leader = lock.poll(self.config.tick)
                self.probe.beat()
                self.probe.set_assigned(1 if leader else 0)
                LEADER.labels(self.config.name).set(1 if leader else 0)
                if not leader:
                    self.last_handled = self.queued = None  # a future leadership starts from the manifests
                    continue
                try:
                    self.turn(lock.paused)
                except Exception as exc:  # a broker or ClickHouse outage: retried next turn
                    self.stats.errors += 1
                    log.error("scheduler %s: %s: %s (retrying)", self.config.name, type(exc).__name__, exc)
                    stop.wait(min(5.0, self.config.tick * 5))
        finally:
            lock.close()
        log.info("scheduler %s stopped: %d run(s) enqueued", self.config.name, len(self.stats.enqueued))
        return self.stats

    def _mine(self, manifests: dict[str, RunManifest]) -> dict[datetime, RunManifest]:
        slots = {slot_of(self.config.name, rid): m for rid, m in manifests.items()}
        return {slot: m for slot, m in slots.items() if slot is not None}

    def turn(self, paused: bool) -> None:
        """One leader turn: find due slots, decide, enqueue at most one."""
        now = utc(self.clock())
        if self.last_handled is None:
            mine = self._mine(read_manifests(self.settings))
            self.last_handled = max(mine) if mine else now
            log.info(
                "scheduler %s: continuing after slot %s", self.config.name, self.last_handled.isoformat()
            )
        due: deque[datetime] = deque(maxlen=MAX_REMEMBERED)
        slot = self.config.schedule.next_after(self.last_handled)
        while slot <= now:
            due.append(slot)
            slot = self.config.schedule.next_after(slot)
        decided = plan(list(due), now, self.config.catch_up, self.config.grace)
        for skipped in decided.skipped:
            self._skip(skipped, f"missed (catch-up {self.config.catch_up})")
        target = decided.run
        if target is None and self.queued is not None:
            target = self.queued
        if target is None:
            return
        if (now - target).total_seconds() < jitter_seconds(self.config.name, target, self.config.jitter):
            return  # not yet: the slot's jitter has not passed (the skipped ones stay handled)
        if paused:
            self._skip(target, "the schedule is paused")
        else:
            self._handle(target)

    def _skip(self, slot: datetime, reason: str) -> None:
        rid = run_id(self.config.name, slot)
        log.info("scheduler %s: slot %s skipped: %s", self.config.name, rid, reason)
        self.stats.skipped.append(rid)
        SKIPPED.labels(self.config.name).inc()
        self._done(slot)

    def _done(self, slot: datetime) -> None:
        if self.queued is not None and self.queued <= slot:
            if self.queued < slot:
                dropped, handled = run_id(self.config.name, self.queued), run_id(self.config.name, slot)
                log.info(
                    "scheduler %s: queued slot %s dropped: %s came after it",
                    self.config.name,
                    dropped,
                    handled,
                )
            self.queued = None
        self.last_handled = max(self.last_handled or slot, slot)
        LAST_SLOT.labels(self.config.name).set(self.last_handled.timestamp())

    def _handle(self, slot: datetime) -> None:
        rid = run_id(self.config.name, slot)
        mine = self._mine(read_manifests(self.settings))
        existing = mine.get(slot)
        if existing is not None and existing.status == "enqueued":
            log.info("scheduler %s: slot %s already enqueued, nothing to do", self.config.name, rid)
            return self._done(slot)
        earlier = [s for s in mine if s < slot]
        if existing is None and earlier:
            previous = run_id(self.config.name, max(earlier))
            busy = self._incomplete(previous, mine[max(earlier)])
            OVERDUE.labels(self.config.name).set(1 if busy else 0)
            if busy and self.config.overlap != "allow":
                if self.config.overlap == "skip":
                    return self._skip(slot, f"overlap skip: previous run {previous} is incomplete ({busy})")
                if self.queued is not None and self.queued < slot:
                    log.info("scheduler %s: queued slot %s skipped: replaced by a newer one",
                             self.config.name, run_id(self.config.name, self.queued))  # fmt: skip
                    self.stats.skipped.append(run_id(self.config.name, self.queued))
                if self.queued != slot:
                    log.info("scheduler %s: slot %s queued: previous run %s is incomplete (%s)",
                             self.config.name, rid, previous, busy)  # fmt: skip
                self.queued = slot
                self.last_handled = max(self.last_handled or slot, slot)
                return
        log.info("scheduler %s: enqueueing slot %s%s", self.config.name, rid,
                 f" (resuming: manifest {existing.status})" if existing else "")  # fmt: skip
        summary = enqueue_run(
            self.settings,
            rid,
            self.source(),
            int(slot.timestamp() * 1000),
            deadline=self.config.deadline_for(slot),
        )
        log.info("scheduler %s: enqueued %s: %d request(s) in %.2f s", self.config.name, rid,
                 summary.enqueued, summary.seconds)  # fmt: skip
        self.stats.enqueued.append(rid)
        ENQUEUED.labels(self.config.name).inc()
        self._done(slot)

    def _incomplete(self, previous: str, manifest: RunManifest) -> str:
        """Why ``previous`` counts as still running ('' when it is done or failed)."""
        if manifest.status == "failed":
            return ""
        if manifest.status == "enqueueing":
            return "still enqueueing"
        try:
            from streams.runs.status import run_status

            progress = run_status(self.settings, previous)
        except Exception as exc:  # ClickHouse down: assume still running, say so
            return f"status unknown: {type(exc).__name__}"
        return "" if progress.complete else f"{progress.processed}/{progress.total} processed"
