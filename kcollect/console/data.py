"""What the console shows, as plain dicts: the same numbers as the CLI's ``--json`` outputs (``runs list``,
``runs status``, ``dlq inspect``, ``lag``, ``runs verify``), gathered from the same functions.

``ConsoleData`` keeps one ``RunWatcher`` (runs and dead-letter topics read incrementally) and a
background lag sampler whose window gives the Burrow-style statuses and whose history draws the lag
charts. Every public method returns JSON-ready data; the pages render it and ``/api/...`` serves it.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Message, TopicPartition

from kcollect.ops.dlq import DlqRecord, read_dlq, replay
from schemas.topics import REQUESTS, REQUESTS_DLQ, RESULTS_DLQ, SCHEDULER_LOCK
from streams.kafka.clients import make_admin, make_consumer
from streams.kafka.dead_letter import header_map
from streams.kafka.tail import read_to_end
from streams.lag.collector import LagCollector, LagMonitor, Snapshot, group_statuses, sort_worst_first
from streams.observability.logs import redact
from streams.runs.status import RunProgress, RunState, RunWatcher
from streams.settings.model import Settings

log = logging.getLogger(__name__)
SCHEDULED_RUN = re.compile(r"^(?P<name>.+)-(?P<slot>\d{8}T\d{6}Z)$")
HISTORY_SECONDS = 600.0
SAMPLE_MAX_BYTES = 2000


def schedule_of(run_id: str) -> str | None:
    """The schedule a run id belongs to (``NAME-YYYYMMDDTHHMMSSZ``), None for an ad-hoc run."""
    match = SCHEDULED_RUN.match(run_id)
    return match.group("name") if match else None


def slot_time(run_id: str) -> datetime | None:
    match = SCHEDULED_RUN.match(run_id)
    return datetime.strptime(match.group("slot"), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) if match else None


def iso(ms: float | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def run_row(progress: RunProgress, summary: dict[str, Any], manifest: Any, now_ms: int) -> dict[str, Any]:
    """One run as the runs page shows it (pure): counts, shares of the total, times, ETA."""
    data = progress.as_dict()
    total = progress.total
    started_ms = manifest.created_at_ms if manifest is not None else summary.get("first_ms")
    finished_ms = summary.get("last_ms") if progress.complete else None
    processed = progress.processed
    elapsed_s = ((finished_ms or now_ms) - started_ms) / 1000 if started_ms is not None else None
    eta_s = None
    if not progress.complete and total and elapsed_s and processed > 0 and progress.pending:
        eta_s = round(progress.pending / (processed / elapsed_s), 1)
    partial = int(summary.get("partial", 0))
    data.update(
        schedule=schedule_of(progress.run_id),
        ok=int(summary.get("ok", progress.stored - partial)),
        partial=partial,
        started=iso(started_ms),
        finished=iso(finished_ms),
        duration_s=None if elapsed_s is None else round(elapsed_s, 1),
        eta_s=eta_s,
        shares=shares(progress, partial),
    )
    return data


def run_matches(row: dict[str, Any], schedule: str | None, state: RunState | None) -> bool:
    """Whether a run row (``run_row``) passes the schedule and state filters (pure)."""
    if schedule is not None and row.get("schedule") != schedule:
        return False
    return state is None or state.admits(str(row["state"]), bool(row["complete"]))


RATE_WINDOW_SECONDS = 60.0
RATE_STAGES = ("processed", "stored", "dead_lettered")


def stage_rates(points: list[tuple[float, dict[str, int]]]) -> dict[str, float | None]:
    """Clients per second of each stage between the oldest and the newest point (pure); None with
    fewer than two points or no time between them."""
    if len(points) < 2 or points[-1][0] <= points[0][0]:
        return dict.fromkeys(RATE_STAGES)
    (t0, first), (t1, last) = points[0], points[-1]
    return {stage: round(max(last[stage] - first[stage], 0) / (t1 - t0), 1) for stage in RATE_STAGES}


class RateTracker:
    """Recent counts of each run, for its stage rates over the last ``RATE_WINDOW_SECONDS``."""

    def __init__(self) -> None:
        self._points: dict[str, deque[tuple[float, dict[str, int]]]] = {}

    def observe(self, row: dict[str, Any], now: float) -> dict[str, float | None]:
        points = self._points.setdefault(row["run_id"], deque())
        points.append((now, {stage: int(row[stage]) for stage in RATE_STAGES}))
        while len(points) > 2 and points[0][0] < now - RATE_WINDOW_SECONDS:
            points.popleft()
        return stage_rates(list(points))


def shares(progress: RunProgress, partial: int) -> dict[str, float]:
    """Fractions of the total for the progress bar: stored ok, partial, dead-lettered, pending."""
    total = progress.total or max(progress.processed, 1)
    ok = max(progress.stored - partial, 0)
    parts = {"ok": ok, "partial": partial, "dead_lettered": progress.dead_lettered}
    parts["pending"] = max(total - sum(parts.values()), 0)
    return {name: round(value / total, 4) for name, value in parts.items()}


def dead_letter_groups(records: list[DlqRecord], stored: set[str], samples: int = 3) -> list[dict[str, Any]]:
    """Dead letters grouped by stage and error class, with samples (pure); values stay text, escaped when
    rendered. ``open`` counts the records whose client is not stored since (a replay or a later attempt)."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for record in records:
        key = (record.headers.get("stage", "?"), record.headers.get("error_class", "?"))
        group = groups.setdefault(
            key, {"stage": key[0], "error_class": key[1], "count": 0, "open": 0, "samples": []}
        )
        client = (record.key or b"").decode("utf-8", "replace")
        group["count"] += 1
        group["open"] += client not in stored
        if len(group["samples"]) < samples:
            group["samples"].append(
                {
                    "topic_partition": record.partition,
                    "offset": record.offset,
                    "client_id": client,
                    "headers": {k: redact(v) for k, v in record.headers.items()},
                    "original": redact(record.value[:SAMPLE_MAX_BYTES].decode("utf-8", "replace")),
                }
            )
    return sorted(groups.values(), key=lambda g: (-g["open"], -g["count"], g["stage"], g["error_class"]))


class DeadLetterIndex:
    """The dead-letter topics read incrementally (one assigned consumer, no group), indexed by run.

    Per run and (stage, error class) the first ``samples`` records are kept whole; later ones only as
    their key and those two headers, so the page's counts stay exact while memory stays small.
    """

    def __init__(self, settings: Settings, samples: int = 3) -> None:
        self._samples = samples
        topics = [spec.name(settings.topic_prefix) for spec in (REQUESTS_DLQ, RESULTS_DLQ)]
        self._consumer = make_consumer(
            settings, f"kcollect-console-dlq-{time.time_ns()}", **{"enable.partition.eof": True}
        )
        metadata = self._consumer.list_topics(timeout=settings.broker_timeout_seconds).topics
        self._partitions = {(t, p) for t in topics if t in metadata for p in metadata[t].partitions}
        self._consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in sorted(self._partitions)])
        self._at_end: set[tuple[str, int]] = set()
        self.by_run: dict[str, list[DlqRecord]] = {}
        self._kept: dict[tuple[str, str, str], int] = {}

    def refresh(self, max_wait: float = 2.0) -> None:
        read_to_end(
            self._consumer, self._partitions, self._at_end, self._take, max_wait=max_wait, batch_size=2000
        )

    def _take(self, msg: Message) -> None:
        headers = header_map(msg.headers())  # type: ignore[arg-type]
        self._add(
            DlqRecord(
                int(msg.partition() or 0), int(msg.offset() or 0), msg.key(), msg.value() or b"", headers
            )
        )

    def _add(self, record: DlqRecord) -> None:
        run_id = record.headers.get("run_id")
        if not run_id:
            return
        stage, error_class = record.headers.get("stage", "?"), record.headers.get("error_class", "?")
        kind = (run_id, stage, error_class)
        if self._kept.get(kind, 0) >= self._samples:
            record = DlqRecord(
                record.partition, record.offset, record.key, b"", {"stage": stage, "error_class": error_class}
            )
        else:
            self._kept[kind] = self._kept.get(kind, 0) + 1
        self.by_run.setdefault(run_id, []).append(record)

    def close(self) -> None:
        self._consumer.close()


@dataclass
class LagPoint:
    at_ms: int
    lags: dict[str, int]  # "group / topic" -> summed lag


class LagSampler:
    """Samples lag every ``interval`` seconds in a thread; keeps the last snapshot and ``HISTORY_SECONDS``."""

    def __init__(self, settings: Settings, interval: float) -> None:
        self._monitor = LagMonitor(LagCollector(settings), window=10)
        self._interval = interval
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.snapshot: Snapshot | None = None
        self.error: str | None = None
        self.history: deque[LagPoint] = deque()
        self._thread = threading.Thread(target=self._loop, name="console-lag", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.sample_once()
            self._stop.wait(max(0.0, self._interval - (time.monotonic() - started)))

    def sample_once(self) -> None:
        try:
            snapshot = self._monitor.sample()
        except Exception as exc:  # a broker outage: keep the last snapshot, say so on the page
            self.error = f"{type(exc).__name__}: {redact(str(exc))}"
            return
        sums: dict[str, int] = {}
        for row in snapshot.rows:
            sums[f"{row.group} / {row.topic}"] = sums.get(f"{row.group} / {row.topic}", 0) + row.lag
        with self._lock:
            self.snapshot, self.error = snapshot, None
            self.history.append(LagPoint(int(time.time() * 1000), sums))
            while self.history and self.history[0].at_ms < self.history[-1].at_ms - HISTORY_SECONDS * 1000:
                self.history.popleft()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self._monitor.close()

    def view(self) -> dict[str, Any]:
        with self._lock:
            snapshot, history = self.snapshot, list(self.history)
        if snapshot is None:
            return {"partitions": [], "groups": [], "history": [], "error": self.error or "not measured yet"}
        rows = sort_worst_first(snapshot.rows)
        statuses = group_statuses(rows)
        groups = [
            {
                "group": name,
                "status": status.name,
                "state": snapshot.groups[name].state,
                "lag": sum(r.lag for r in rows if r.group == name),
                "lag_seconds_max": max((r.lag_seconds or 0.0 for r in rows if r.group == name), default=0.0),
            }
            for name, status in sorted(statuses.items(), key=lambda x: (-x[1], x[0]))
        ]
        series = sorted({key for point in history for key in point.lags})
        return {
            "partitions": [row.as_dict() for row in rows],
            "groups": groups,
            "history": [{"at_ms": p.at_ms, "lags": p.lags} for p in history],
            "series": series,
            "collected_in_s": round(snapshot.seconds, 3),
            "error": self.error,
        }


class ConsoleData:
    """The console's data, from the cluster and ClickHouse named by ``settings``."""

    def __init__(self, settings: Settings, lag_interval: float = 2.0) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._watcher: RunWatcher | None = None
        self._refreshed = 0.0
        self._dead: DeadLetterIndex | None = None
        self._rates = RateTracker()
        self.lag = LagSampler(settings, lag_interval)

    def start(self) -> None:
        self.lag.start()

    def close(self) -> None:
        self.lag.close()
        if self._watcher is not None:
            self._watcher.close()
        if self._dead is not None:
            self._dead.close()

    def _fresh_watcher(self) -> RunWatcher:
        if self._watcher is None:
            self._watcher = RunWatcher(self.settings)
        if time.monotonic() - self._refreshed > 0.5:
            self._watcher.refresh(3.0)
            self._refreshed = time.monotonic()
        return self._watcher

    def runs(self, schedule: str | None = None, state: RunState | None = None) -> dict[str, Any]:
        """Every run (newest first) with its counts, times and ETA, those passing the filters."""
        now_ms = int(time.time() * 1000)
        with self._lock:
            watcher = self._fresh_watcher()
            progress = watcher.all_runs()
            manifests = dict(watcher.manifests)
            summaries = watcher.summaries()
        rows = [run_row(p, summaries.get(p.run_id, {}), manifests.get(p.run_id), now_ms) for p in progress]
        for row in rows:
            row["rates"] = self._rates.observe(row, time.monotonic())
        rows.sort(key=lambda r: (r["started"] or "", r["run_id"]), reverse=True)
        schedules = sorted({r["schedule"] for r in rows if r["schedule"]})
        rows = [r for r in rows if run_matches(r, schedule, state)]
        chosen = {"schedule": schedule, "state": None if state is None else state.value}
        return {"runs": rows, "schedules": schedules, "filter": chosen}

    def _dead_letters(self, run_id: str) -> list[DlqRecord]:
        if self._dead is None:
            self._dead = DeadLetterIndex(self.settings)
        self._dead.refresh()
        return list(self._dead.by_run.get(run_id, []))

    def run(self, run_id: str) -> dict[str, Any]:
        """One run: its row, dead letters by stage and class, requests waiting per partition."""
        with self._lock:
            watcher = self._fresh_watcher()
            progress = watcher.progress(run_id)
            manifest = watcher.manifests.get(run_id)
            records = self._dead_letters(run_id)
            clients = {(r.key or b"").decode("utf-8", "replace") for r in records}
            stored = watcher.stored_among(run_id, clients) if clients else set()
            summary = watcher.summaries(run_id).get(run_id, {})
        row = run_row(progress, summary, manifest, int(time.time() * 1000))
        row["rates"] = self._rates.observe(row, time.monotonic())
        lag = self.lag.view()
        requests = REQUESTS.name(self.settings.topic_prefix)
        waiting = [
            {
                "partition": p["partition"],
                "lag": p["lag"],
                "lag_seconds": p["lag_seconds"],
                "owner": p["owner"],
            }
            for p in lag["partitions"]
            if p["group"] == self.settings.processor_group and p["topic"] == requests
        ]
        return {
            "run": row,
            "dead_letters": dead_letter_groups(records, stored),
            "requests_waiting": sorted(waiting, key=lambda p: p["partition"]),
        }

    def replay(
        self, run_id: str, stage: str | None, error_class: str | None, dry_run: bool, include_stored: bool
    ) -> dict[str, Any]:
        """Re-enqueue the run's requests dead letters that match (not those stored since, unless asked)."""
        records = [
            r
            for r in read_dlq(self.settings, REQUESTS_DLQ.name(self.settings.topic_prefix), idle_seconds=0.5)
            if r.matches(stage, error_class, None, run_id)
        ]
        if not include_stored and records:
            with self._lock:
                watcher = self._fresh_watcher()
                clients = {(r.key or b"").decode("utf-8", "replace") for r in records}
                stored = watcher.stored_among(run_id, clients)
            records = [r for r in records if (r.key or b"").decode("utf-8", "replace") not in stored]
        latest: dict[bytes, DlqRecord] = {}
        for record in records:  # one replay per client: its newest dead letter
            latest[record.key or b""] = record
        chosen = list(latest.values())
        result: dict[str, Any] = {"run_id": run_id, "matched": len(chosen), "dry_run": dry_run}
        if not dry_run and chosen:
            result |= replay(self.settings, chosen, REQUESTS.name(self.settings.topic_prefix), True)
        return result

    def verify(self, run_id: str) -> dict[str, Any]:
        from kcollect.ops.value_check import value_check_for
        from streams.runs.checker import verify_run

        report = verify_run(self.settings, run_id, value_check=value_check_for(self.settings))
        return report.as_dict()

    def schedules(self) -> dict[str, Any]:
        """Every schedule seen in run ids or on the lock topic: last and next slot, leader, paused."""
        with self._lock:
            run_ids = list(self._fresh_watcher().manifests)
        records = read_lock_records(self.settings)
        names = {n for n in map(schedule_of, run_ids) if n} | set(records["paused"]) | set(records["specs"])
        rows = []
        now = datetime.now(UTC)
        for name in sorted(names):
            slots = sorted(s for r in run_ids if schedule_of(r) == name and (s := slot_time(r)) is not None)
            spec = records["specs"].get(name)
            rows.append(
                {
                    "schedule": name,
                    "last_slot": slots[-1].isoformat() if slots else None,
                    "next_slot": next_slot(spec, now),
                    "describe": spec.get("describe") if spec else None,
                    "paused": records["paused"].get(name, False),
                    "leader": schedule_leader(self.settings, name),
                    "runs": len(slots),
                }
            )
        return {"schedules": rows}

    def pause(self, name: str, paused: bool) -> dict[str, Any]:
        from producers.scheduler.lock import publish_pause

        publish_pause(self.settings, name, paused)
        return {"schedule": name, "paused": paused}


def next_slot(spec: dict[str, Any] | None, now: datetime) -> str | None:
    from producers.scheduler.schedule import parse_schedule

    if not spec:
        return None
    try:
        return parse_schedule(spec.get("every"), spec.get("cron")).next_after(now).isoformat()
    except (ValueError, TypeError):
        return None


def read_lock_records(settings: Settings, timeout: float = 5.0) -> dict[str, dict[str, Any]]:
    """Pause states and schedule specs from the scheduler lock topic (last record per key wins)."""
    from producers.scheduler.lock import SPEC_PREFIX

    topic = SCHEDULER_LOCK.name(settings.topic_prefix)
    paused: dict[str, bool] = {}
    specs: dict[str, dict[str, Any]] = {}
    consumer = make_consumer(settings, f"kcollect-console-{time.time_ns()}", **{"enable.partition.eof": True})
    try:
        metadata = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return {"paused": paused, "specs": specs}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in metadata.partitions])
        partitions = {(topic, p) for p in metadata.partitions}

        def take(msg: Message) -> None:
            _take_lock_record(msg.key(), msg.value(), paused, specs, SPEC_PREFIX)

        read_to_end(consumer, partitions, set(), take, max_wait=timeout, batch_size=500)
    finally:
        consumer.close()
    return {"paused": paused, "specs": specs}


def _take_lock_record(
    key: bytes | None, value: bytes | None, paused: dict[str, bool], specs: dict[str, Any], spec_prefix: str
) -> None:
    text = (key or b"").decode("utf-8", "replace")
    try:
        data = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return
    if not isinstance(data, dict):
        return
    if text.startswith("pause:"):
        paused[text.removeprefix("pause:")] = bool(data.get("paused"))
    elif text.startswith(spec_prefix):
        specs[text.removeprefix(spec_prefix)] = data


def schedule_leader(settings: Settings, name: str) -> str | None:
    """The lock group member owning partition 0 (client id @ host), None when none or not listed."""
    from producers.scheduler.lock import lock_group

    admin = make_admin(settings)
    group = lock_group(settings, name)
    try:
        description = admin.describe_consumer_groups([group], request_timeout=5)[group].result(timeout=10)
    except Exception:  # a broker without member lists (Tansu), or the group is gone
        return None
    for member in description.members or []:
        assignment = member.assignment.topic_partitions if member.assignment else []
        if any(tp.partition == 0 for tp in assignment):
            return f"{member.client_id}@{member.host}"
    return None
