"""``kcollect doctor``'s advice, as pure functions of measured facts (no I/O; unit-tested).

The advice reads like a workflow engine's worker-tuning guide, mapped onto Kafka consumer groups:

- schedule-to-start latency: the age of the oldest unconsumed record of a stage;
- free slots: in-flight capacity (members x max_in_flight_batches x consume_batch records) minus
  the lag; no free slot means records queue up;
- idle workers: members beyond the partition count get no partition;
- a stage whose lag keeps growing needs more consumers (how many, from the measured rates), or more
  partitions when the consumers needed exceed the partition count;
- a growing dead-letter topic; and the ETA of the current run.

Facts are gathered by ``kcollect.ops.doctor_facts.gather_facts`` (two samples ``interval`` seconds apart).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Level = Literal["ok", "info", "warn", "act"]
SLOW_START_SECONDS = 60.0


@dataclass
class StageFacts:
    """One stage (a consumer group on its input topic) measured twice, ``interval`` seconds apart."""

    stage: str
    group: str
    topic: str
    partitions: int
    members: int | None  # None: the broker does not list members (Tansu)
    lag_before: int
    lag_after: int
    consumed_per_s: float  # committed offsets' progress
    produced_per_s: float  # end offsets' progress
    oldest_age_seconds: float | None
    slots_per_member: int | None = None  # records one member can hold in flight
    stuck_partitions: int = 0  # STALLED or STOPPED
    owners: dict[str, int] = field(default_factory=dict)  # "client id@host (member id)" -> partitions


@dataclass
class DeadLetterFacts:
    topic: str
    records: int
    per_s: float


@dataclass
class RunFacts:
    run_id: str
    total: int | None
    done: int  # stored + dead-lettered
    per_s: float


@dataclass
class Facts:
    interval: float
    stages: list[StageFacts] = field(default_factory=list)
    dead_letters: list[DeadLetterFacts] = field(default_factory=list)
    run: RunFacts | None = None
    notes: list[str] = field(default_factory=list)  # what could not be measured, and why

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Finding:
    level: Level
    title: str
    detail: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def needed_consumers(current: int, consumed_per_s: float, produced_per_s: float) -> int:
    """Consumers needed to keep up, assuming throughput scales with consumers (at least ``current``)."""
    if consumed_per_s <= 0:
        return current
    return max(current, math.ceil(current * produced_per_s / consumed_per_s))


def growth_advice(s: StageFacts) -> Finding | None:
    """Lag growing, draining, or not moving at all."""
    if s.lag_after > 0 and s.consumed_per_s <= 0:
        return Finding(
            "act",
            f"{s.stage}: {s.lag_after:,} records behind and nothing consumed in the interval",
            [
                f"group {s.group} commits nothing on {s.topic} ({s.stuck_partitions} partition(s) stalled "
                "or stopped): check that the service runs, then its logs for a stuck batch"
            ],
        )
    growth = s.produced_per_s - s.consumed_per_s
    if s.lag_after > s.lag_before and growth > 0:
        known = s.members if s.members else 1
        need = needed_consumers(known, s.consumed_per_s, s.produced_per_s)
        per_member = s.consumed_per_s / known
        detail = [
            f"in {s.produced_per_s:,.0f}/s, out {s.consumed_per_s:,.0f}/s: the lag grows {growth:,.0f}/s",
        ]
        who = f"{s.members} member(s)" if s.members else "the current processes (membership unknown)"
        factor = s.produced_per_s / s.consumed_per_s
        detail.append(f"needs {factor:.1f}x the consumption of {who}, ~{per_member:,.0f}/s each")
        if need <= s.partitions:
            detail.append(
                f"add {s.stage} processes: run {need} (at most {s.partitions}, the partition count)"
                if s.members
                else f"run {factor:.1f}x as many {s.stage} processes, at most {s.partitions}"
            )
        else:
            detail.append(
                f"{need} consumers needed but {s.topic} has {s.partitions} partitions: recreate it with "
                f">= {need} partitions (KCOLLECT_PARTITIONS), or make each consumer faster"
            )
        return Finding("act", f"{s.stage}: lag keeps growing ({s.lag_before:,} -> {s.lag_after:,})", detail)
    if s.lag_after > 0 and s.consumed_per_s > s.produced_per_s:
        eta = s.lag_after / (s.consumed_per_s - s.produced_per_s)
        return Finding("info", f"{s.stage}: draining {s.lag_after:,} records, caught up in ~{_duration(eta)}")
    return None


def latency_advice(s: StageFacts) -> Finding | None:
    if s.oldest_age_seconds is None or s.lag_after == 0:
        return None
    level: Level = "warn" if s.oldest_age_seconds > SLOW_START_SECONDS else "info"
    return Finding(
        level,
        f"{s.stage}: schedule-to-start latency {_duration(s.oldest_age_seconds)}",
        [f"the oldest record not yet consumed on {s.topic} was produced {s.oldest_age_seconds:.1f} s ago"],
    )


def slot_advice(s: StageFacts) -> Finding | None:
    if s.slots_per_member is None or s.members == 0:
        return None
    if s.members is None:
        busy = s.lag_after / s.slots_per_member
        return Finding(
            "info",
            f"{s.stage}: {s.lag_after:,} records behind fill the in-flight slots of {busy:.1f} member(s)",
            [f"one member holds up to {s.slots_per_member:,} records in flight (membership unknown here)"],
        )
    capacity = s.members * s.slots_per_member
    if s.lag_after >= capacity:
        return Finding(
            "warn" if s.lag_after > s.lag_before else "info",
            f"{s.stage}: no free slots ({capacity:,} in flight, {s.lag_after - capacity:,} waiting)",
        )
    free = capacity - s.lag_after
    return Finding("ok", f"{s.stage}: {free:,} free slots of {capacity:,} ({100 * free / capacity:.0f}%)")


def owner_advice(s: StageFacts) -> Finding | None:
    """Who owns the stage's partitions (from the group description), or why that is not known."""
    if not s.owners:
        return None
    if set(s.owners) == {"unknown"}:
        return Finding("info", f"{s.stage}: partition owners unknown (the broker does not list members)")
    shown = [f"{count} partition(s): {owner}" for owner, count in sorted(s.owners.items())]
    return Finding("info", f"{s.stage}: {s.partitions} partition(s) owned by", shown)


def member_advice(s: StageFacts) -> Finding | None:
    if s.members is None:
        return Finding(
            "info",
            f"{s.stage}: the broker does not list group members; idle members cannot be counted",
            [f"run at most {s.partitions} {s.stage} processes: one more than partitions sits idle"],
        )
    if s.members == 0:
        return Finding(
            "warn" if s.lag_after > 0 else "info",
            f"{s.stage}: group {s.group} has no active member",
            [f"start the {s.stage} service ({s.lag_after:,} records waiting)"] if s.lag_after else [],
        )
    if s.members > s.partitions:
        idle = s.members - s.partitions
        return Finding(
            "warn",
            f"{s.stage}: {idle} idle member(s): {s.members} members, {s.partitions} partitions",
            [f"stop {idle} {s.stage} process(es), or recreate {s.topic} with more partitions"],
        )
    return None


def dead_letter_advice(d: DeadLetterFacts) -> Finding | None:
    if d.per_s > 0:
        return Finding(
            "act",
            f"dead letters growing: {d.topic} +{d.per_s:,.1f}/s ({d.records:,} in all)",
            ["read the error headers of the latest records; a failing subsystem or ClickHouse is likely"],
        )
    if d.records > 0:
        return Finding("info", f"{d.topic} holds {d.records:,} dead letters (not growing)")
    return None


def run_advice(r: RunFacts) -> Finding | None:
    if r.total is None:
        return Finding("info", f"run {r.run_id}: still enqueueing ({r.done:,} done so far)")
    pending = max(r.total - r.done, 0)
    if pending == 0:
        return Finding("ok", f"run {r.run_id}: complete ({r.done:,}/{r.total:,})")
    if r.per_s <= 0:
        return Finding("warn", f"run {r.run_id}: {pending:,} pending and no progress in the interval")
    return Finding(
        "info",
        f"run {r.run_id}: {r.done:,}/{r.total:,} done, ETA ~{_duration(pending / r.per_s)} "
        f"at {r.per_s:,.0f}/s",
    )


def advise(facts: Facts) -> list[Finding]:
    """Every finding, the most urgent first; an ``ok`` summary when nothing needs action."""
    found: list[Finding] = []
    for stage in facts.stages:
        for rule in (growth_advice, latency_advice, slot_advice, member_advice, owner_advice):
            finding = rule(stage)
            if finding is not None:
                found.append(finding)
    found += [f for f in map(dead_letter_advice, facts.dead_letters) if f is not None]
    if facts.run is not None and (finding := run_advice(facts.run)) is not None:
        found.append(finding)
    found += [Finding("info", note) for note in facts.notes]
    order = {"act": 0, "warn": 1, "info": 2, "ok": 3}
    found.sort(key=lambda f: order[f.level])
    if not any(f.level in ("warn", "act") for f in found):
        found.insert(0, Finding("ok", "every stage keeps up"))
    return found
