"""Run identity: the run id (given, or derived from a schedule) and the run's manifest across re-runs.

The same command must yield the same run and byte-identical requests, so a re-run after a crash
completes the run instead of starting another: ``--schedule NAME --scheduled-for TIME`` gives
``NAME-YYYYMMDDTHHMMSSZ`` (TIME in UTC, seconds precision), and ``run_manifest`` reuses the
``requested_at_ms`` and ``created_at_ms`` of a manifest the run already has.

A run's deadline (``--deadline``: an absolute time, or a duration after the run's request time) is
written into its manifest and every request (``deadline_ms``); the processor dead-letters a request
whose deadline has passed (reason ``expired``) instead of fetching it. The first enqueue of a run
fixes its deadline: a re-run keeps it (a different one is logged and ignored), so requests stay
byte-identical.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from schemas.models import MAX_ENQUEUES, EnqueueTotal, RunManifest, RunStatus, check_run_id

log = logging.getLogger(__name__)


class DeadlineError(ValueError):
    """A deadline that is not after the run's request time."""


@dataclass(frozen=True)
class Deadline:
    """When a run's requests expire: at ``at_ms``, or ``after_ms`` after the run's request time."""

    at_ms: int | None = None
    after_ms: int | None = None

    def resolve(self, requested_at_ms: int) -> int:
        """The deadline in epoch ms; ValueError when it is not after the request time."""
        deadline = self.at_ms if self.at_ms is not None else requested_at_ms + (self.after_ms or 0)
        if deadline <= requested_at_ms:
            raise DeadlineError(
                f"--deadline {_iso(deadline)} must be after the run's request time {_iso(requested_at_ms)}"
            )
        return deadline


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def scheduled_run_id(schedule: str, scheduled_for: str) -> str:
    """``NAME-20261123T120000Z`` from a schedule name and an ISO-8601 time (no offset: UTC)."""
    try:
        when = datetime.fromisoformat(scheduled_for.strip())
    except ValueError:
        raise ValueError(
            f"--scheduled-for must be an ISO-8601 time such as 2026-11-23T12:00:00Z (got {scheduled_for!r})"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return check_run_id(f"{schedule}-{when.astimezone(UTC):%Y%m%dT%H%M%SZ}")


def resolve_run_id(run_id: str | None, schedule: str | None, scheduled_for: str | None) -> str:
    """The run id from ``--run-id`` or from ``--schedule`` + ``--scheduled-for``; ValueError if unclear."""
    if run_id is not None:
        if schedule is not None or scheduled_for is not None:
            raise ValueError("give either --run-id or --schedule with --scheduled-for, not both")
        return check_run_id(run_id)
    if schedule is None or scheduled_for is None:
        raise ValueError("give --run-id, or --schedule NAME with --scheduled-for TIME")
    return scheduled_run_id(schedule, scheduled_for)


def now_ms() -> int:
    return int(time.time() * 1000)


def run_manifest(
    run_id: str,
    source: str,
    previous: RunManifest | None,
    requested_at_ms: int | None = None,
    deadline: Deadline | None = None,
) -> RunManifest:
    """The ``enqueueing`` manifest of a run: times (the deadline included) come from ``previous`` when
    the run already has one."""
    now = now_ms()
    if previous is not None:
        if deadline is not None and deadline.resolve(previous.requested_at_ms) != previous.deadline_ms:
            log.warning(
                "run %s keeps the deadline of its first enqueue (%s); the --deadline given is ignored",
                run_id,
                "none" if previous.deadline_ms is None else _iso(previous.deadline_ms),
            )
        return RunManifest(
            run_id=run_id,
            source=source,
            status="enqueueing",
            requested_at_ms=previous.requested_at_ms,
            created_at_ms=previous.created_at_ms,
            deadline_ms=previous.deadline_ms,
            enqueues=previous.enqueues,
        )
    requested = requested_at_ms if requested_at_ms is not None else now
    return RunManifest(
        run_id=run_id,
        source=source,
        status="enqueueing",
        requested_at_ms=requested,
        created_at_ms=now,
        deadline_ms=deadline.resolve(requested) if deadline is not None else None,
    )


def finished(
    manifest: RunManifest, status: RunStatus, total: int | None, enqueue: EnqueueTotal | None = None
) -> RunManifest:
    """The manifest at the end of an enqueue; a confirmed one (``enqueue``) is appended to ``enqueues``."""
    update: dict[str, object] = {"status": status, "total": total, "finished_at_ms": now_ms()}
    if enqueue is not None:
        update["enqueues"] = (*manifest.enqueues, enqueue)[-MAX_ENQUEUES:]
    return manifest.model_copy(update=update)


SLOT_TIME_FORMAT = "%Y%m%dT%H%M%SZ"
"""The slot part of a scheduled run id (``producers/scheduler/schedule.py`` forms them the same way)."""


def schedule_slot(run_id: str) -> tuple[str, int] | None:
    """``("NAME", slot epoch ms)`` of a scheduled run id ``NAME-YYYYMMDDTHHMMSSZ``; None for an ad-hoc id."""
    name, dash, stamp = run_id.rpartition("-")
    if not dash or not name or len(stamp) != 16:
        return None
    try:
        slot = datetime.strptime(stamp, SLOT_TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None
    return name, int(slot.timestamp()) * 1000
