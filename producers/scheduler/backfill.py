"""`kcollect scheduler backfill`: enqueue every slot of a schedule between two times that has no run yet.

A slot whose run is ``enqueued`` is left alone; one that is ``enqueueing`` or ``failed`` (interrupted)
is enqueued again, which completes it. Run ids and ``requested_at_ms`` are those the scheduler would
have used (``NAME-<slot>``, the slot time), so a backfill and a running scheduler never enqueue the
same slot twice: whichever comes second finds the manifest. A backfill does not take the scheduler's
lock: run one backfill per schedule at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from producers.enqueue.enqueue import enqueue_run
from producers.enqueue.sources import ClientSource
from producers.scheduler.schedule import Schedule, run_id, slots_between
from streams.runs.manifests import read_manifests
from streams.settings.model import Settings

log = logging.getLogger(__name__)
MAX_SLOTS = 10000


def backfill(
    settings: Settings,
    name: str,
    schedule: Schedule,
    start: datetime,
    end: datetime,
    source: Callable[[], ClientSource],
    dry_run: bool = False,
) -> list[tuple[str, str]]:
    """(run id, what happened) per slot in ``[start, end]``: ``enqueued``, ``exists`` or ``would enqueue``."""
    if end < start:
        raise ValueError(f"--to ({end.isoformat()}) is before --from ({start.isoformat()})")
    slots = []
    for slot in slots_between(schedule, start, end):
        slots.append(slot)
        if len(slots) > MAX_SLOTS:
            raise ValueError(f"more than {MAX_SLOTS} slots between --from and --to: narrow the range")
    manifests = read_manifests(settings)
    outcome: list[tuple[str, str]] = []
    for slot in slots:
        rid = run_id(name, slot)
        existing = manifests.get(rid)
        if existing is not None and existing.status == "enqueued":
            outcome.append((rid, "exists"))
        elif dry_run:
            outcome.append((rid, "would enqueue"))
        else:
            summary = enqueue_run(settings, rid, source(), int(slot.timestamp() * 1000))
            log.info("backfill %s: enqueued %d request(s)", rid, summary.enqueued)
            outcome.append((rid, "enqueued"))
    return outcome
