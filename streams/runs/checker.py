"""The run checker: compares every acknowledged enqueue with what ClickHouse and the dead-letter topics hold.

What a run *should* hold comes from the broker and, when given, from the caller:

- the run's manifest (runs topic): its ``total`` is what the enqueue confirmed;
- the requests topic, read from the beginning with an assigned consumer (no group): the client ids of
  every request of the run (``schemas.codec.decode_requests``);
- ``expected``: client ids the caller knows were acknowledged (the drills pass the enqueue's source),
  so a run whose manifest and requests vanished with the broker is still checked, and reported lost.

What it *does* hold: ``client_results`` raw (every inserted row) and ``FINAL`` (after replacement), and
the dead-letter topics (``run_id`` header, key = client id). The report counts:

- ``lost``: acknowledged but neither stored nor dead-lettered (plus manifest total minus requests found
  when no ``expected`` covers the difference);
- ``duplicated_raw`` (a client with more than one raw row: harmless, FINAL hides it) and
  ``duplicated_final`` (more than one row under FINAL: a real duplicate);
- ``unexpected``: stored but never enqueued;
- ``wrong``: a metric that differs from what the ``ValueCheck`` says (optional; the built-in simulated
  subsystems' ``simulated_check`` when the deployment uses them).

The requests topic must still hold the run (retention: 7 days); an older run reads as lost.
A run is ``ok`` only when it has a manifest in state ``enqueued`` (a run whose manifest is gone fails
even when ``expected`` is given) and every count above except ``duplicated_raw`` is zero.
``kcollect runs verify R`` exits 1 otherwise.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from confluent_kafka import KafkaError, TopicPartition

from schemas.codec import decode_requests
from schemas.ddl import RESULTS_TABLE
from schemas.topics import REQUESTS, REQUESTS_DLQ, RESULTS_DLQ
from streams.clickhouse.client import connect
from streams.kafka.admin import require_topics
from streams.kafka.clients import make_consumer
from streams.kafka.dead_letter import header_map
from streams.runs.manifests import read_manifest
from streams.settings.model import Settings

SAMPLE = 20
# (run id, client id, metrics as stored) -> the names of metrics whose value is wrong
ValueCheck = Callable[[str, str, dict[str, Any]], list[str]]


@dataclass(frozen=True)
class RunDeadLetter:
    """One dead-letter record of the run."""

    topic: str
    client_id: str
    stage: str
    error_class: str
    original: tuple[str, int, int]  # original topic, partition, offset
    headers: dict[str, str]


@dataclass
class VerifyReport:
    run_id: str
    manifest_state: str
    manifest_total: int | None
    enqueued: int  # distinct clients of the run found on the requests topic
    expected: int  # distinct clients that must be accounted for
    stored_raw_rows: int
    stored: int  # distinct clients under FINAL
    dead_lettered: int  # distinct clients dead-lettered and not stored
    lost: int
    duplicated_raw: int
    duplicated_final: int
    unexpected: int
    wrong: int
    values_checked: bool
    recovery_seconds: float | None = None
    samples: dict[str, list[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    dead_letters: list[RunDeadLetter] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self, with_dead_letters: bool = False) -> dict[str, Any]:
        data = asdict(self)
        if not with_dead_letters:
            data.pop("dead_letters")
        data["ok"] = self.ok
        return data


def _read_topics(settings: Settings, topics: list[str], take: Callable[[Any], None], timeout: float) -> None:
    """Read every partition of ``topics`` from the beginning to its end (assigned, no group)."""
    counts = require_topics(settings, topics)
    reader = make_consumer(
        settings,
        f"kcollect-verify-{uuid.uuid4().hex[:8]}",
        **{"enable.partition.eof": True, "fetch.wait.max.ms": 10},
    )
    partitions = {(t, p) for t, n in counts.items() for p in range(n)}
    reader.assign([TopicPartition(t, p, 0) for t, p in sorted(partitions)])
    at_end: set[tuple[str, int]] = set()
    deadline = time.monotonic() + timeout
    try:
        while at_end < partitions:
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {', '.join(topics)} to the end within {timeout:g} s")
            for msg in reader.consume(10000, 0.2):
                where = (str(msg.topic()), int(msg.partition() or 0))
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        at_end.add(where)
                    continue
                at_end.discard(where)
                take(msg)
    finally:
        reader.close()


def requested_clients(settings: Settings, run_id: str, timeout: float = 120.0) -> set[str]:
    """Client ids of every request of ``run_id`` on the requests topic."""
    found: set[str] = set()
    batch: list[bytes | None] = []

    def flush() -> None:
        good, _ = decode_requests(batch)
        found.update(r["client_id"] for r in good if r["run_id"] == run_id)
        batch.clear()

    def take(msg: Any) -> None:
        batch.append(msg.value())
        if len(batch) >= 10000:
            flush()

    _read_topics(settings, [REQUESTS.name(settings.topic_prefix)], take, timeout)
    flush()
    return found


def _int(text: str | None) -> int:
    try:
        return int(text or "-1")
    except ValueError:
        return -1


def dead_letters(settings: Settings, run_id: str | None, timeout: float = 60.0) -> list[RunDeadLetter]:
    """Dead-letter records (both topics) whose ``run_id`` header is ``run_id`` (None: every record)."""
    prefix = settings.topic_prefix
    found: list[RunDeadLetter] = []

    def take(msg: Any) -> None:
        headers = header_map(msg.headers())
        if run_id is not None and headers.get("run_id") != run_id:
            return
        original = (
            headers.get("original_topic", ""),
            _int(headers.get("original_partition")),
            _int(headers.get("original_offset")),
        )
        key = (msg.key() or b"").decode("utf-8", "replace")
        found.append(
            RunDeadLetter(
                str(msg.topic()),
                key,
                headers.get("stage", ""),
                headers.get("error_class", ""),
                original,
                headers,
            )
        )

    _read_topics(settings, [REQUESTS_DLQ.name(prefix), RESULTS_DLQ.name(prefix)], take, timeout)
    return found


def _stored(
    settings: Settings, run_id: str, check: ValueCheck | None
) -> tuple[int, Counter[str], int, list[str]]:
    """(raw rows, rows per client under FINAL, clients with >1 raw row, clients with a wrong value)."""
    address = settings.clickhouse()
    table = f"{address.database}.{RESULTS_TABLE}"
    client = connect(address)
    params = {"r": run_id}
    try:
        raw_rows = int(client.execute(f"SELECT count() FROM {table} WHERE run_id = %(r)s", params)[0][0])
        raw_dups = int(
            client.execute(
                f"SELECT count() FROM (SELECT client_id FROM {table} WHERE run_id = %(r)s "
                "GROUP BY client_id HAVING count() > 1)",
                params,
            )[0][0]
        )
        final: Counter[str] = Counter()
        wrong: list[str] = []
        columns = "client_id, metrics" if check is not None else "client_id"
        rows = client.execute_iter(
            f"SELECT {columns} FROM {table} FINAL WHERE run_id = %(r)s",
            params,
            settings={"max_block_size": 65536},
        )
        for row in rows:
            client_id = row[0]
            final[client_id] += 1
            if check is not None and check(run_id, client_id, orjson.loads(row[1])):
                wrong.append(client_id)
        return raw_rows, final, raw_dups, wrong
    finally:
        client.disconnect()


def _sample(items: Iterable[str]) -> list[str]:
    return sorted(items, key=lambda c: (len(c), c))[:SAMPLE]


def verify_run(
    settings: Settings,
    run_id: str,
    *,
    expected: Iterable[str] | None = None,
    value_check: ValueCheck | None = None,
    timeout: float = 120.0,
) -> VerifyReport:
    """Check run ``run_id`` end to end (see the module docstring)."""
    manifest = read_manifest(settings, run_id)
    requested = requested_clients(settings, run_id, timeout)
    wanted = set(requested)
    if expected is not None:
        wanted.update(expected)
    letters = dead_letters(settings, run_id, timeout)
    raw_rows, final, raw_dups, wrong = _stored(settings, run_id, value_check)
    stored = set(final)
    dead = {d.client_id for d in letters} - stored
    lost = wanted - stored - dead
    total = manifest.total if manifest is not None and manifest.status == "enqueued" else None
    unaccounted = max(0, (total or 0) - len(wanted))  # confirmed by the manifest, but no request found
    dup_final = [c for c, n in final.items() if n > 1]
    unexpected = stored - wanted
    report = VerifyReport(
        run_id=run_id,
        manifest_state=manifest.status if manifest is not None else "no-manifest",
        manifest_total=total,
        enqueued=len(requested),
        expected=max(len(wanted), total or 0),
        stored_raw_rows=raw_rows,
        stored=len(stored),
        dead_lettered=len(dead),
        lost=len(lost) + unaccounted,
        duplicated_raw=raw_dups,
        duplicated_final=len(dup_final),
        unexpected=len(unexpected),
        wrong=len(wrong),
        values_checked=value_check is not None,
        samples={
            "lost": _sample(lost),
            "duplicated_final": _sample(dup_final),
            "unexpected": _sample(unexpected),
        }
        | {"wrong": _sample(wrong)},
        dead_letters=letters,
    )
    report.problems = _problems(report, manifest is not None, expected is not None)
    return report


def _problems(report: VerifyReport, has_manifest: bool, has_expected: bool) -> list[str]:
    problems: list[str] = []
    if not has_manifest:
        problems.append("no manifest: the run's enqueue cannot be confirmed (broker data lost?)")
    elif report.manifest_total is None:
        problems.append(f"manifest state is {report.manifest_state!r}, not 'enqueued'")
    if report.expected == 0 and not has_expected:
        problems.append("nothing was enqueued for this run")
    for name in ("lost", "duplicated_final", "unexpected", "wrong"):
        count = getattr(report, name)
        if count:
            problems.append(f"{count:,} {name.replace('_', ' ')}")
    return problems


def watch_recovery(
    settings: Settings, groups: dict[str, str], timeout: float, interval: float = 0.5
) -> float | None:
    """Seconds until every ``{group: topic}`` has lag 0 (``streams.lag.probe.partition_lags``);
    None on timeout."""
    from streams.lag.probe import LagProbe

    probes = [LagProbe(settings, group, topic) for group, topic in groups.items()]
    start = time.monotonic()
    try:
        while time.monotonic() - start < timeout:
            if all(probe.total() == 0 for probe in probes):
                return round(time.monotonic() - start, 3)
            time.sleep(interval)
        return None
    finally:
        for probe in probes:
            probe.close()


def pipeline_groups(settings: Settings) -> dict[str, str]:
    """The processor and sink groups with the topic each consumes."""
    from schemas.topics import RESULTS

    prefix = settings.topic_prefix
    return {settings.processor_group: REQUESTS.name(prefix), settings.sink_group: RESULTS.name(prefix)}
