"""Gathering ``kcollect doctor``'s facts: two lag samples ``interval`` seconds apart per stage, the
dead-letter topics' growth, and the latest run's progress (when ClickHouse answers)."""

from __future__ import annotations

import logging
import time
from typing import Any

from kcollect.ops.doctor import DeadLetterFacts, Facts, RunFacts, StageFacts
from processors.processor.collect import MAX_BATCH_CLIENTS
from schemas.topics import REQUESTS, REQUESTS_DLQ, RESULTS, RESULTS_DLQ
from streams.lag.collector import LagCollector, LagMonitor, Snapshot
from streams.settings.model import Settings

log = logging.getLogger(__name__)


def _stage(
    name: str, before: Snapshot, after: Snapshot, interval: float, slots: int | None
) -> StageFacts | None:
    if not after.rows:
        return None
    row = after.rows[0]
    topic, group = row.topic, row.group

    def total(snapshot: Snapshot, attribute: str) -> int:
        return sum(getattr(r, attribute) or 0 for r in snapshot.rows)

    return StageFacts(
        stage=name,
        group=group,
        topic=topic,
        partitions=len(after.rows),
        members=after.groups[group].members,
        lag_before=total(before, "lag"),
        lag_after=total(after, "lag"),
        consumed_per_s=max(0, total(after, "committed") - total(before, "committed")) / interval,
        produced_per_s=max(0, total(after, "end") - total(before, "end")) / interval,
        oldest_age_seconds=max((r.lag_seconds or 0.0 for r in after.rows), default=None),
        slots_per_member=slots,
        stuck_partitions=sum(r.status in ("STALLED", "STOPPED") for r in after.rows),
        owners=_owners(after),
    )


def _owners(snapshot: Snapshot) -> dict[str, int]:
    """Partitions per owner, named ``client id@host (member id)``; "unknown" where the broker does not say."""
    counts: dict[str, int] = {}
    for row in snapshot.rows:
        if row.owner in ("unknown", "-"):
            name = "unknown" if row.owner == "unknown" else "no owner"
        else:
            name = f"{row.client_id or '?'}@{row.host} ({row.owner})"
        counts[name] = counts.get(name, 0) + 1
    return counts


def _run_watcher(settings: Settings, notes: list[str]) -> Any:
    """A RunWatcher, or None without ClickHouse or the runs topics (saying why in ``notes``)."""
    try:
        from streams.runs.status import RunWatcher

        return RunWatcher(settings)
    except Exception as exc:
        notes.append(f"no run progress: {exc}")
        return None


def gather_facts(settings: Settings, interval: float = 5.0) -> Facts:
    """Measure every stage twice, ``interval`` seconds apart (raises the usual broker errors)."""
    prefix = settings.topic_prefix
    stages = {
        "processor": (settings.processor_group, REQUESTS.name(prefix)),
        "sink": (settings.sink_group, RESULTS.name(prefix)),
    }
    slots = {  # records a member holds in flight; a sink record is a result batch of up to 1,000 rows
        "processor": settings.max_in_flight_batches * settings.consume_batch,
        "sink": max(settings.sink_consume_batch, settings.sink_batch_rows // MAX_BATCH_CLIENTS),
    }
    dlq_topics = [REQUESTS_DLQ.name(prefix), RESULTS_DLQ.name(prefix)]
    monitors = {
        name: LagMonitor(LagCollector(settings, [group], [topic])) for name, (group, topic) in stages.items()
    }
    dlq = LagCollector(settings, [], dlq_topics, time_lag=False)
    notes: list[str] = []
    runs = _run_watcher(settings, notes)
    try:
        first = {name: monitor.sample() for name, monitor in monitors.items()}
        dlq_first = dlq.collect()
        run_first = _latest_run(runs) if runs else None
        started = time.monotonic()
        time.sleep(interval)
        second = {name: monitor.sample() for name, monitor in monitors.items()}
        dlq_second = dlq.collect()
        run_second = _latest_run(runs) if runs else None
        took = max(time.monotonic() - started, 1e-3)
    finally:
        for monitor in monitors.values():
            monitor.close()
        dlq.close()
        if runs:
            runs.close()
    facts = Facts(interval=took, notes=notes)
    for name in stages:
        stage = _stage(name, first[name], second[name], took, slots[name])
        if stage is not None:
            facts.stages.append(stage)
    for topic in dlq_topics:
        before = sum(end for (t, _), end in dlq_first.ends.items() if t == topic)
        after = sum(end for (t, _), end in dlq_second.ends.items() if t == topic)
        if (topic, 0) in dlq_second.ends:
            facts.dead_letters.append(DeadLetterFacts(topic, after, max(0, after - before) / took))
    if run_first is not None and run_second is not None and run_first.run_id == run_second.run_id:
        rate = max(0, run_second.processed - run_first.processed) / took
        facts.run = RunFacts(run_second.run_id, run_second.total, run_second.processed, rate)
    return facts


def _latest_run(watcher: Any) -> Any:
    try:
        watcher.refresh(5.0)
        if not watcher.manifests:
            return None
        latest = max(watcher.manifests.values(), key=lambda m: m.created_at_ms)
        return watcher.progress(latest.run_id)
    except Exception as exc:
        log.debug("no run progress (%s)", exc)
        return None
