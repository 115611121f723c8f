"""Run identity: the run id (given, or derived from a schedule) and the run's manifest across re-runs.

The same command must yield the same run and byte-identical requests, so a re-run after a crash
completes the run instead of starting another: ``--schedule NAME --scheduled-for TIME`` gives
``NAME-YYYYMMDDTHHMMSSZ`` (TIME in UTC, seconds precision), and ``run_manifest`` reuses the
``requested_at_ms`` and ``created_at_ms`` of a manifest the run already has.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from schemas.models import RunManifest, RunStatus, check_run_id


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
) -> RunManifest:
    """The ``enqueueing`` manifest of a run: times come from ``previous`` when the run already has one."""
    now = now_ms()
    if previous is not None:
        return RunManifest(
            run_id=run_id,
            source=source,
            status="enqueueing",
            requested_at_ms=previous.requested_at_ms,
            created_at_ms=previous.created_at_ms,
            deadline_ms=previous.deadline_ms,
        )
    requested = requested_at_ms if requested_at_ms is not None else now
    return RunManifest(
        run_id=run_id, source=source, status="enqueueing", requested_at_ms=requested, created_at_ms=now
    )


def finished(manifest: RunManifest, status: RunStatus, total: int | None) -> RunManifest:
    return manifest.model_copy(update={"status": status, "total": total, "finished_at_ms": now_ms()})


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
