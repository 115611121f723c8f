"""Run completion: a run is complete when every client of its manifest's client set is stored or
dead-lettered.

- The set: a confirmed enqueue records the run's client set in the manifest (runs topic, last record per
  run wins) as its size (``total``, the union of every confirmed enqueue's clients) and a 64-bit digest
  (``schemas.models.EnqueueTotal``, ``schemas.client_set``). Without a manifest the total is unknown
  and the run is never complete (``kcollect run`` passes the total it enqueued as ``fallback_total``).
- ``stored``: distinct clients in ``client_results`` (from ``run_summary_final``; re-deliveries do not
  count twice).
- ``dead_lettered``: distinct client keys of dead-letter records (requests.dlq and results.dlq) whose
  ``run_id`` header names the run, minus the clients that are stored anyway (a later attempt landed).
  Dead letters of records that did not decode (stages ``decode`` and ``sink-decode``) are uncertain:
  garbage that names the run is no client of it, while a client's result that did not decode is; they
  count only where the set check finds them to be clients of the run (``unmatched`` counts the rest).
- ``expired``: dead-lettered requests whose deadline passed (stage ``deadline`` or reason ``expired``).
- ``processed`` = stored + dead-lettered clients of the set; ``pending`` = total - processed.
- ``complete``: the set check (``schemas.client_set.covers``): the stored clients' digest (one
  aggregate query in ClickHouse, run only once the counts say the run may be complete) plus the dead
  letters' add up to the manifest's digest. A manifest without a client set (written before them), or
  members that cannot be the set by digest alone (more certain members than the set holds: rows of an
  enqueue that was never confirmed), fall back to the count: processed >= total.

``RunWatcher`` keeps one consumer assigned to the runs and dead-letter topics and reads them
incrementally, so ``--wait`` and ``--watch`` poll cheaply: a poll is a count per run in
``run_summary_final`` and, near the end of a run, one ``DISTINCT client_id`` aggregate over its rows.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from clickhouse_driver.errors import ServerException
from confluent_kafka import Message, TopicPartition

from schemas.client_set import CLICKHOUSE_CLIENT_HASH, MASK, client_hash, covers, digest_of, from_hex
from schemas.codec import CodecError, decode
from schemas.ddl import RESULTS_TABLE, RUN_SUMMARY_VIEW
from schemas.models import RunManifest
from schemas.topics import REQUESTS_DLQ, RESULTS_DLQ, RUNS
from streams.clickhouse.client import connect
from streams.kafka.admin import require_topics
from streams.kafka.clients import make_consumer
from streams.kafka.dead_letter import header_map
from streams.kafka.tail import read_to_end
from streams.settings.model import Settings

UNKNOWN_TABLE = 60
IN_CHUNK = 1000  # client ids per IN (...) list: 1000 ids of up to 128 characters stay under max_query_size


DECODE_STAGES = frozenset(("decode", "sink-decode"))  # dead letters of records that did not decode


class RunState(StrEnum):
    """What a runs filter can ask for (``kcollect runs list --state``, the console's runs page): complete
    or not yet, or the manifest's state (``RunProgress.state``)."""

    complete = "complete"
    incomplete = "incomplete"
    enqueueing = "enqueueing"
    enqueued = "enqueued"
    failed = "failed"
    no_manifest = "no-manifest"

    def admits(self, state: str, complete: bool) -> bool:
        """Whether a run in manifest state ``state``, complete or not, passes this filter."""
        if self in (RunState.complete, RunState.incomplete):
            return complete == (self is RunState.complete)
        return state == self.value


@dataclass
class RunProgress:
    run_id: str
    state: str  # the manifest's status (enqueueing, enqueued, failed), or "no-manifest"
    total: int | None
    stored: int
    dead_lettered: int
    dead_lettered_requests: int
    dead_lettered_results: int
    processed: int
    pending: int | None
    complete: bool
    expired: int = 0
    unmatched: int = 0  # dead letters naming the run that are no client of its set (garbage)
    checked_by: str = "count"  # "set" (the digest check decided) or "count"
    # dead-lettered clients (not stored anyway) by reason: the ``reason`` header, else the ``stage``
    dead_letter_reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DeadOfRun:
    """A run's dead-lettered client keys, by what they say."""

    requests: set[str] = field(default_factory=set)
    results: set[str] = field(default_factory=set)
    undecodable: set[str] = field(default_factory=set)  # their record did not decode
    expired: set[str] = field(default_factory=set)
    reasons: dict[str, set[str]] = field(default_factory=dict)  # reason (or stage) -> client keys


def reason_counts(reasons: dict[str, set[str]] | None, also_stored: set[str]) -> dict[str, int]:
    """Clients per dead-letter reason, without those stored anyway, most frequent first."""
    counts = {reason: len(clients - also_stored) for reason, clients in (reasons or {}).items()}
    return dict(sorted(((r, n) for r, n in counts.items() if n), key=lambda item: (-item[1], item[0])))


def summarize(
    run_id: str,
    manifest: RunManifest | None,
    stored: int,
    dead_requests: set[str],
    dead_results: set[str],
    also_stored: set[str],
    fallback_total: int | None = None,
    *,
    undecodable: set[str] | None = None,
    expired: set[str] | None = None,
    stored_digest: int | None = None,
    reasons: dict[str, set[str]] | None = None,
) -> RunProgress:
    """A run's progress from its parts (pure): see the module docstring for the definitions.
    ``stored_digest``: the digest of the stored clients, when it was asked for."""
    dead = (dead_requests | dead_results) - also_stored
    uncertain = dead & (undecodable or set())
    certain = dead - uncertain
    state: str
    if manifest is not None:
        state = manifest.status
        total = manifest.total if manifest.status == "enqueued" else None
    else:
        state, total = "no-manifest", fallback_total
    client_set = manifest.client_set if manifest is not None and total is not None else None
    decided: bool | None = None
    if client_set is not None and stored_digest is not None:
        decided = covers(
            client_set.union_clients,
            from_hex(client_set.union_digest),
            stored + len(certain),
            (stored_digest + digest_of(certain)) & MASK,
            {c: client_hash(c) for c in uncertain},
        )
    if decided is None and (client_set is None or stored_digest is not None):
        dead_count, checked_by = len(dead), "count"  # no set to check, or not decidable by it
        complete = total is not None and stored + dead_count >= total
    else:
        members = (total or 0) - stored - len(certain) if decided else 0
        dead_count, checked_by, complete = len(certain) + members, "set", bool(decided)
    processed = stored + dead_count
    return RunProgress(
        run_id=run_id,
        state=state,
        total=total,
        stored=stored,
        dead_lettered=dead_count,
        dead_lettered_requests=len(dead_requests),
        dead_lettered_results=len(dead_results),
        processed=processed,
        pending=None if total is None else max(total - processed, 0),
        complete=complete,
        expired=len((expired or set()) - also_stored),
        unmatched=len(dead) - dead_count,
        checked_by=checked_by,
        dead_letter_reasons=reason_counts(reasons, also_stored),
    )


class RunWatcher:
    """Reads manifests and dead letters incrementally and counts stored clients in ClickHouse."""

    def __init__(self, settings: Settings) -> None:
        prefix = settings.topic_prefix
        self._runs_topic = RUNS.name(prefix)
        self._dlq_topics = {REQUESTS_DLQ.name(prefix): "requests", RESULTS_DLQ.name(prefix): "results"}
        counts = require_topics(settings, [self._runs_topic, *self._dlq_topics])
        group = f"kcollect-runs-status-{uuid.uuid4().hex[:8]}"
        self._consumer = make_consumer(settings, group, **{"enable.partition.eof": True})
        self._partitions = {(t, p) for t, n in counts.items() for p in range(n)}
        self._consumer.assign([TopicPartition(t, p, 0) for t, p in sorted(self._partitions)])
        self._at_end: set[tuple[str, int]] = set()
        self.manifests: dict[str, RunManifest] = {}
        self.dead: dict[str, DeadOfRun] = {}
        self._address = settings.clickhouse()
        self._client = connect(self._address)

    def close(self) -> None:
        self._consumer.close()
        self._client.disconnect()

    def refresh(self, max_wait: float = 10.0) -> None:
        """Read what is new on the runs and dead-letter topics (up to each partition's end)."""
        read_to_end(self._consumer, self._partitions, self._at_end, self._take_message, max_wait=max_wait)

    def _take_message(self, msg: Message) -> None:
        self._take(str(msg.topic()), msg.key(), msg.value(), msg.headers())

    def _take(self, topic: str, key: bytes | None, value: bytes | None, headers: Any) -> None:
        if topic == self._runs_topic:
            try:
                manifest = decode(RunManifest, value)
            except CodecError:
                return
            self.manifests[manifest.run_id] = manifest
            return
        found = header_map(headers)
        run_id = found.get("run_id")
        client = (key or b"").decode("utf-8", "replace")
        if not (run_id and client):
            return
        dead = self.dead.setdefault(run_id, DeadOfRun())
        (dead.requests if self._dlq_topics[topic] == "requests" else dead.results).add(client)
        stage = found.get("stage", "")
        dead.reasons.setdefault(found.get("reason") or stage or "unknown", set()).add(client)
        if stage in DECODE_STAGES:
            dead.undecodable.add(client)
        if stage == "deadline" or found.get("reason") == "expired":
            dead.expired.add(client)

    def _query(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        return list(self._client.execute(sql, params))

    def stored_counts(self, run_id: str | None = None) -> dict[str, int]:
        where = "WHERE run_id = %(r)s" if run_id is not None else ""
        db = self._address.database
        try:
            rows = self._query(f"SELECT run_id, clients FROM {db}.{RUN_SUMMARY_VIEW} {where}", {"r": run_id})
        except ServerException as exc:
            if exc.code != UNKNOWN_TABLE:
                raise
            sql = f"SELECT run_id, uniqExact(client_id) FROM {db}.{RESULTS_TABLE} {where} GROUP BY run_id"
            rows = self._query(sql, {"r": run_id})
        return {str(r): int(n) for r, n in rows}

    def stored_digest(self, run_id: str) -> tuple[int, int]:
        """(distinct stored clients, their digest: ``schemas.client_set``) of ``run_id``."""
        sql = (
            f"SELECT count(), sum({CLICKHOUSE_CLIENT_HASH}) FROM (SELECT DISTINCT client_id "
            f"FROM {self._address.database}.{RESULTS_TABLE} WHERE run_id = %(r)s)"
        )
        count, digest = self._query(sql, {"r": run_id})[0]
        return int(count), int(digest or 0) & MASK

    def summaries(self, run_id: str | None = None) -> dict[str, dict[str, int]]:
        """Per run from ``run_summary_final``: clients stored ok and partial, and the first and last
        ``collected_at`` (epoch ms); empty on a database without the view."""
        where = "WHERE run_id = %(r)s" if run_id is not None else ""
        sql = (
            "SELECT run_id, ok_clients, partial_clients, toUInt64(first_collected_at), "
            f"toUInt64(last_collected_at) FROM {self._address.database}.{RUN_SUMMARY_VIEW} {where}"
        )
        try:
            rows = self._query(sql, {"r": run_id})
        except ServerException as exc:
            if exc.code != UNKNOWN_TABLE:
                raise
            return {}
        return {
            str(r): {"ok": int(ok), "partial": int(partial), "first_ms": first * 1000, "last_ms": last * 1000}
            for r, ok, partial, first, last in rows
        }

    def stored_among(self, run_id: str, clients: set[str]) -> set[str]:
        """The clients of ``clients`` stored anyway (asked in chunks: the ids go inline in the SQL)."""
        sql = (
            f"SELECT DISTINCT client_id FROM {self._address.database}.{RESULTS_TABLE} "
            "WHERE run_id = %(r)s AND client_id IN %(c)s"
        )
        ordered = sorted(clients)
        stored: set[str] = set()
        for start in range(0, len(ordered), IN_CHUNK):
            chunk = tuple(ordered[start : start + IN_CHUNK])
            stored.update(str(row[0]) for row in self._query(sql, {"r": run_id, "c": chunk}))
        return stored

    def progress(
        self, run_id: str, stored: int | None = None, fallback_total: int | None = None
    ) -> RunProgress:
        if stored is None:
            stored = self.stored_counts(run_id).get(run_id, 0)
        dead = self.dead.get(run_id, DeadOfRun())
        requests, results = dead.requests, dead.results
        also_stored = self.stored_among(run_id, requests | results)
        manifest = self.manifests.get(run_id)
        digest: int | None = None
        total = manifest.total if manifest is not None and manifest.status == "enqueued" else None
        may_be_complete = total is not None and stored + len((requests | results) - also_stored) >= total
        if manifest is not None and manifest.client_set is not None and may_be_complete:
            stored, digest = self.stored_digest(run_id)  # exact, and of the same moment as the digest
        return summarize(
            run_id,
            manifest,
            stored,
            requests,
            results,
            also_stored,
            fallback_total,
            undecodable=dead.undecodable,
            expired=dead.expired,
            stored_digest=digest,
            reasons=dead.reasons,
        )

    def all_runs(self) -> list[RunProgress]:
        stored = self.stored_counts()
        run_ids = sorted(set(self.manifests) | set(stored) | set(self.dead))
        return [self.progress(r, stored.get(r, 0)) for r in run_ids]


def run_status(settings: Settings, run_id: str) -> RunProgress:
    watcher = RunWatcher(settings)
    try:
        watcher.refresh()
        return watcher.progress(run_id)
    finally:
        watcher.close()


def wait_complete(
    settings: Settings,
    run_id: str,
    timeout: float,
    interval: float = 0.5,
    on_progress: Callable[[RunProgress], None] | None = None,
    fallback_total: int | None = None,
) -> RunProgress:
    """Poll until the run is complete or ``timeout`` passes; returns the last progress seen."""
    deadline = time.monotonic() + timeout
    watcher = RunWatcher(settings)
    try:
        while True:
            watcher.refresh(max(0.1, min(5.0, deadline - time.monotonic())))
            progress = watcher.progress(run_id, fallback_total=fallback_total)
            if on_progress is not None:
                on_progress(progress)
            if progress.complete or time.monotonic() >= deadline:
                return progress
            time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
    finally:
        watcher.close()
