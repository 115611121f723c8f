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
  ``duplicated_final``: a real duplicate, one that no merge will ever remove: more than one row under
  FINAL, or raw rows of one (run, client) in more than one partition of the table (month of
  ``requested_at``). Background merges never merge across partitions, and whether ``FINAL`` does
  depends on the server and on ``do_not_merge_across_partitions_select_final``: 18.16 merges across
  them at query time, which would hide such a duplicate from a FINAL count alone;
- ``unexpected``: stored but never enqueued;
- ``dead_lettered`` counts the run's clients only; ``dead_letters_of_others`` the dead-letter keys that
  name the run but are none of its clients (garbage carrying the run's id): reported, not a failure;
- ``stored_and_dead_lettered``: a client with a row and a dead letter of the run: two outcomes; a dead
  letter that was replayed (a request on the requests topic carries its position in a ``replayed_from``
  header: ``kcollect dlq replay``, the console) is superseded, not a second outcome (``replayed``);
- ``wrong``: a metric that differs from what the ``ValueCheck`` says (optional; the built-in simulated
  subsystems' ``simulated_check`` when the deployment uses them);
- ``incomplete_ok``: a row with status ``ok`` that lacks one of the run's metrics (the deployment's
  configured metrics when known, else every metric name seen in the run's rows, present or missing);
- ``status_contradicts_missing``: ``ok`` with a non-empty ``missing``, ``partial`` with an empty one, or
  a metric both present and listed as missing;
- ``wrong_computed``: ``computed`` differs from the compute function applied to the row's metrics
  (optional: the deployment's compute function; ``kcollect runs verify`` passes it).

The requests topic must still hold the run (retention: 7 days); an older run reads as lost.
A run is ``ok`` only when it has a manifest in state ``enqueued`` (a run whose manifest is gone fails
even when ``expected`` is given) and every count above except ``duplicated_raw`` is zero.
``kcollect runs verify R`` exits 1 otherwise; it checks values, completeness and computed values with
the deployment's processor config.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from schemas.ddl import RESULTS_TABLE
from schemas.topics import REQUESTS, REQUESTS_DLQ, RESULTS_DLQ
from streams.clickhouse.client import connect
from streams.kafka.dead_letter import header_map
from streams.kafka.tail import read_topics
from streams.runs.manifests import read_manifest, run_clients
from streams.settings.model import Settings

SAMPLE = 20
# (run id, client id, metrics as stored) -> the names of metrics whose value is wrong
ValueCheck = Callable[[str, str, dict[str, Any]], list[str]]
# a compute function (processors.processor.compute.ComputeFn): metrics -> computed values
ComputeCheck = Callable[[dict[str, float]], dict[str, float]]


def row_problems(
    status: str,
    metrics: dict[str, Any],
    missing: list[str],
    computed: dict[str, Any],
    compute: ComputeCheck | None,
) -> list[str]:
    """What contradicts itself in one stored row (pure): ``status_contradicts_missing`` and
    ``wrong_computed`` (``incomplete_ok`` needs the run's metric names: ``RowChecks``)."""
    problems: list[str] = []
    if (status == "ok") == bool(missing) or not metrics.keys().isdisjoint(missing):
        problems.append("status_contradicts_missing")
    if compute is not None:
        try:
            expected = compute(metrics)
        except Exception:  # a row the compute function cannot take was not computed by it
            expected = None
        if expected != computed:
            problems.append("wrong_computed")
    return problems


@dataclass
class RowChecks:
    """The per-row checks over a run's rows under FINAL, fed one row at a time."""

    compute: ComputeCheck | None = None
    metric_names: frozenset[str] | None = None  # None: every name seen in the run's rows
    found: dict[str, list[str]] = field(default_factory=dict)  # problem -> clients
    _ok_by_names: dict[frozenset[str], list[str]] = field(default_factory=dict)
    _seen_names: set[str] = field(default_factory=set)

    def add(
        self, client_id: str, status: str, metrics: dict[str, Any], missing: list[str], computed: Any
    ) -> None:
        for problem in row_problems(status, metrics, missing, computed, self.compute):
            self.found.setdefault(problem, []).append(client_id)
        names = frozenset(metrics)
        if self.metric_names is None:
            self._seen_names.update(names, missing)
        if status == "ok":
            self._ok_by_names.setdefault(names, []).append(client_id)

    def finish(self) -> dict[str, list[str]]:
        """Problem -> clients, ``incomplete_ok`` included."""
        wanted = self.metric_names if self.metric_names is not None else frozenset(self._seen_names)
        incomplete = [
            c for names, clients in self._ok_by_names.items() if not wanted <= names for c in clients
        ]
        if incomplete:
            self.found["incomplete_ok"] = incomplete
        return self.found


@dataclass(frozen=True)
class RunDeadLetter:
    """One dead-letter record of the run."""

    topic: str
    client_id: str
    stage: str
    error_class: str
    original: tuple[str, int, int]  # original topic, partition, offset
    headers: dict[str, str]
    position: tuple[int, int] = (-1, -1)  # its own partition and offset in ``topic``


@dataclass
class VerifyReport:
    run_id: str
    manifest_state: str
    manifest_total: int | None
    enqueued: int  # distinct clients of the run found on the requests topic
    expected: int  # distinct clients that must be accounted for
    stored_raw_rows: int
    stored: int  # distinct clients under FINAL
    dead_lettered: int  # distinct clients of the run (expected) dead-lettered and not stored
    lost: int
    duplicated_raw: int
    duplicated_final: int
    unexpected: int
    wrong: int
    values_checked: bool
    stored_and_dead_lettered: int = 0
    replayed: int = 0  # dead letters of the run replayed onto the requests topic
    dead_letters_of_others: int = 0  # dead-letter keys naming the run that are none of its clients
    incomplete_ok: int = 0
    status_contradicts_missing: int = 0
    wrong_computed: int = 0
    computed_checked: bool = False
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


def requested_clients(settings: Settings, run_id: str, timeout: float = 120.0) -> set[str]:
    """Client ids of every request of ``run_id`` on the requests topic."""
    return run_clients(settings, run_id, timeout)


def replayed_positions(settings: Settings, timeout: float = 120.0) -> set[tuple[int, int]]:
    """(partition, offset) in the requests DLQ of every dead letter replayed onto the requests topic:
    the ``replayed_from`` header of the replayed request (``kcollect.ops.dlq.replay``)."""
    found: set[tuple[int, int]] = set()

    def take(msg: Any) -> None:
        headers = msg.headers()
        if not headers:
            return
        where = header_map(headers).get("replayed_from", "")
        partition, _, offset = where.partition(":")
        if offset:
            found.add((_int(partition), _int(offset)))

    read_topics(settings, [REQUESTS.name(settings.topic_prefix)], take, timeout)
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
                (int(msg.partition()), int(msg.offset())),
            )
        )

    read_topics(settings, [REQUESTS_DLQ.name(prefix), RESULTS_DLQ.name(prefix)], take, timeout)
    return found


@dataclass
class StoredFacts:
    """What ClickHouse holds of a run."""

    raw_rows: int
    final: Counter[str]  # rows per client under FINAL
    raw_duplicates: int  # clients with more than one raw row
    across_partitions: list[str]  # clients with raw rows in more than one partition
    wrong: list[str]  # clients with a wrong metric value
    row_problems: dict[str, list[str]]  # RowChecks' problem -> clients


def stored_metrics(
    names: Sequence[str], values: Sequence[float], text_names: Sequence[str], texts: Sequence[str]
) -> dict[str, Any]:
    """A stored row's metrics as the result held them: the numbers, then the others from their JSON."""
    metrics: dict[str, Any] = dict(zip(names, values, strict=True))
    loads = orjson.loads
    for name, text in zip(text_names, texts, strict=True):
        metrics[name] = loads(text)
    return metrics


def _stored(settings: Settings, run_id: str, check: ValueCheck | None, rows: RowChecks) -> StoredFacts:
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
        across = [
            str(r[0])
            for r in client.execute(
                f"SELECT client_id FROM {table} WHERE run_id = %(r)s "
                "GROUP BY client_id HAVING uniqExact(toYYYYMM(requested_at)) > 1",
                params,
            )
        ]
        final: Counter[str] = Counter()
        wrong: list[str] = []
        result_rows = client.execute_iter(
            f"SELECT client_id, status, metric_names, metric_values, text_names, text_values, missing, "
            f"computed_names, computed_values FROM {table} FINAL WHERE run_id = %(r)s",
            params,
            settings={"max_block_size": 65536},
        )
        for client_id, status, names, values, text_names, texts, missing, cnames, cvalues in result_rows:
            final[client_id] += 1
            metrics = stored_metrics(names, values, text_names, texts)
            if check is not None and check(run_id, client_id, metrics):
                wrong.append(client_id)
            rows.add(client_id, status, metrics, list(missing), dict(zip(cnames, cvalues, strict=True)))
        return StoredFacts(raw_rows, final, raw_dups, across, wrong, rows.finish())
    finally:
        client.disconnect()


def _replayed(
    settings: Settings, letters: list[RunDeadLetter], timeout: float
) -> set[tuple[str, tuple[int, int]]]:
    """(topic, position) of the requests dead letters of ``letters`` that were replayed (the requests
    topic is read once more, only when the run has any)."""
    dlq = REQUESTS_DLQ.name(settings.topic_prefix)
    candidates = {(d.topic, d.position) for d in letters if d.topic == dlq}
    if not candidates:
        return set()
    positions = {(dlq, position) for position in replayed_positions(settings, timeout)}
    return candidates & positions


def _sample(items: Iterable[str]) -> list[str]:
    return sorted(items, key=lambda c: (len(c), c))[:SAMPLE]


def verify_run(
    settings: Settings,
    run_id: str,
    *,
    expected: Iterable[str] | None = None,
    value_check: ValueCheck | None = None,
    compute: ComputeCheck | None = None,
    metric_names: Iterable[str] | None = None,
    timeout: float = 120.0,
) -> VerifyReport:
    """Check run ``run_id`` end to end (see the module docstring). ``compute``: the compute function to
    check ``computed`` against; ``metric_names``: the metrics every ``ok`` row must hold (default: every
    name seen in the run's rows)."""
    manifest = read_manifest(settings, run_id)
    requested = requested_clients(settings, run_id, timeout)
    wanted = set(requested)
    if expected is not None:
        wanted.update(expected)
    letters = dead_letters(settings, run_id, timeout)
    names = frozenset(metric_names) if metric_names is not None else None
    facts = _stored(settings, run_id, value_check, RowChecks(compute, names))
    final, wrong, checks = facts.final, facts.wrong, facts.row_problems
    stored = set(final)
    lettered = {d.client_id for d in letters}
    replayed = _replayed(settings, letters, timeout)
    both = {d.client_id for d in letters if (d.topic, d.position) not in replayed} & stored
    dead = lettered - stored
    lost = wanted - stored - dead
    total = manifest.total if manifest is not None and manifest.status == "enqueued" else None
    unaccounted = max(0, (total or 0) - len(wanted))  # confirmed by the manifest, but no request found
    dup_final = sorted({c for c, n in final.items() if n > 1} | set(facts.across_partitions))
    unexpected = stored - wanted
    report = VerifyReport(
        run_id=run_id,
        manifest_state=manifest.status if manifest is not None else "no-manifest",
        manifest_total=total,
        enqueued=len(requested),
        expected=max(len(wanted), total or 0),
        stored_raw_rows=facts.raw_rows,
        stored=len(stored),
        dead_lettered=len(dead & wanted) if wanted else len(dead),
        dead_letters_of_others=len(dead - wanted) if wanted else 0,
        lost=len(lost) + unaccounted,
        duplicated_raw=facts.raw_duplicates,
        duplicated_final=len(dup_final),
        unexpected=len(unexpected),
        wrong=len(wrong),
        values_checked=value_check is not None,
        stored_and_dead_lettered=len(both),
        replayed=len(replayed),
        incomplete_ok=len(checks.get("incomplete_ok", ())),
        status_contradicts_missing=len(checks.get("status_contradicts_missing", ())),
        wrong_computed=len(checks.get("wrong_computed", ())),
        computed_checked=compute is not None,
        samples={
            "lost": _sample(lost),
            "duplicated_final": _sample(dup_final),
            "unexpected": _sample(unexpected),
            "stored_and_dead_lettered": _sample(both),
        }
        | {"wrong": _sample(wrong)}
        | {name: _sample(clients) for name, clients in sorted(checks.items())},
        dead_letters=letters,
    )
    report.problems = _problems(report, manifest is not None, expected is not None)
    return report


PROBLEM_COUNTS = (
    "lost",
    "duplicated_final",
    "unexpected",
    "wrong",
    "stored_and_dead_lettered",
    "incomplete_ok",
    "status_contradicts_missing",
    "wrong_computed",
)


def _problems(report: VerifyReport, has_manifest: bool, has_expected: bool) -> list[str]:
    problems: list[str] = []
    if not has_manifest:
        problems.append("no manifest: the run's enqueue cannot be confirmed (broker data lost?)")
    elif report.manifest_total is None:
        problems.append(f"manifest state is {report.manifest_state!r}, not 'enqueued'")
    if report.expected == 0 and not has_expected:
        problems.append("nothing was enqueued for this run")
    for name in PROBLEM_COUNTS:
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
