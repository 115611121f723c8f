"""Writing a closed window to ClickHouse: one columnar insert per month, bisected on data errors,
retried with backoff through outages, with the outage state logged once per change and exported.

``WindowWriter.write`` does one attempt; ``write_with_retry`` repeats it until it succeeds or the
sink stops. What an attempt raised decides what happens (``streams.clickhouse.client.classify_insert_error``):
data errors are bisected inside the attempt (the rows refused alone come back to be dead-lettered),
outages are retried with backoff for as long as they last, and an unexpected error (a bug: it says
nothing about the rows, and waiting does not cure it) is tried ``UNEXPECTED_ATTEMPTS`` times, then
raised as ``UnexpectedInsertError``: the sink stops with the error in its log and the window
uncommitted, so its records are consumed again by the next sink (nothing is lost, nothing is
dead-lettered for a fault that is not theirs). A window without a valid row (every record in it was
dead-lettered at decode) has nothing to insert: it is written at once, and its offsets are committed
once its dead letters are confirmed.

Crash points ``before_insert`` and ``after_insert`` (``streams.steps.faults``) surround every insert. Each
insert carries a deduplication token (topic, partition, offset range, month, rows) on a server that
has them (22.2+), so a retry after an insert whose acknowledgement was lost is dropped by the server;
on 18.16 there is no token and the ReplacingMergeTree key does that job under FINAL.

On a cluster each shard's rows go straight to that shard's replicated table (docs/sink.md, "On a
cluster"), where a retried identical block is dropped by the replicas on every version.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from dataclasses import dataclass

from clickhouse_driver import Client

from processors.sink.bisection import insert_bisecting
from processors.sink.columns import (
    CLIENT_ID,
    COLUMN_NAMES,
    OPTIONAL,
    RUN_ID,
    ResultColumns,
    split_columns_by_month,
    take,
)
from processors.sink.windowing import WindowRows
from schemas.ddl import insert_results_sql, insert_table
from streams.clickhouse.client import (
    ServerFeatures,
    classify_insert_error,
    connect,
    insert_settings,
    is_data_error,
    server_version,
)
from streams.clickhouse.cluster import Shard, ShardMap, read_shards
from streams.observability.metrics import (
    SINK_CLICKHOUSE_UP,
    SINK_INSERT_FAILURES,
    SINK_INSERT_LATENCY,
    SINK_INSERTS,
    SINK_ROWS_INSERTED,
)
from streams.settings.model import ClickHouseAddress
from streams.steps.faults import fault_point

log = logging.getLogger(__name__)
Bad = list[tuple[int, Exception]]
BACKOFF_FIRST = 0.2
BACKOFF_MAX = 5.0
UNEXPECTED_ATTEMPTS = 3  # attempts of a window that fails with an unexpected error before the sink stops
_STATS_LOCK = threading.Lock()  # insert workers share the stats and the health state


@dataclass
class SinkStats:
    decoded: int = 0
    invalid: int = 0
    inserted: int = 0
    inserts: int = 0
    insert_failures: int = 0
    refused_rows: int = 0
    outages: int = 0
    windows: int = 0
    decode_seconds: float = 0.0  # thread CPU seconds spent decoding (consumer thread)
    insert_seconds: float = 0.0  # wall seconds inside acknowledged inserts (worker thread)


class UnexpectedInsertError(RuntimeError):
    """An insert failed with an error that is neither a data error nor an outage, every attempt."""


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:300]}" if text else type(exc).__name__


class ClickHouseHealth:
    """Up or down: logs each change once (not each retry) and sets ``kcollect_sink_clickhouse_up``.

    Shared by the insert workers (under a lock): the first failure while up logs the outage, the
    first success while down logs the recovery."""

    def __init__(self, stats: SinkStats) -> None:
        self.up = True
        self._stats = stats
        self._down_since = 0.0
        self._failures = 0
        SINK_CLICKHOUSE_UP.set(1)

    def succeeded(self) -> None:
        with _STATS_LOCK:
            self._succeeded()

    def failed(self, exc: BaseException) -> None:
        with _STATS_LOCK:
            self._failed(exc)

    def _succeeded(self) -> None:
        if not self.up:
            log.warning(
                "ClickHouse is back after %.1f s and %d failed attempt(s): resuming the partitions",
                time.monotonic() - self._down_since,
                self._failures,
            )
            self.up = True
            SINK_CLICKHOUSE_UP.set(1)

    def _failed(self, exc: BaseException) -> None:
        self._stats.insert_failures += 1
        SINK_INSERT_FAILURES.labels("outage").inc()
        if self.up:
            self.up = False
            self._down_since = time.monotonic()
            self._failures = 0
            self._stats.outages += 1
            SINK_CLICKHOUSE_UP.set(0)
            log.warning(
                "ClickHouse insert failed (%s): pausing the partitions, retrying with backoff",
                first_line(exc),
            )
        self._failures += 1
        log.debug("insert attempt %d failed: %s", self._failures, first_line(exc))


Part = tuple[int, int]  # (month, shard index) of a window: one insert (bisected on data errors)
Progress = dict[Part, Bad]  # the parts of a window already stored, with the rows each refused


class WindowWriter:
    """Owns the ClickHouse connections; writes windows (one insert per month of ``requested_at`` and,
    on a cluster, per shard).

    On a single server every insert goes to ``address``. With ``address.cluster`` set, the shards come
    from ``system.clusters`` (read through ``address``) and each shard's rows go straight into its
    replicated local table on one of its replicas: ``preferred`` picks which replica a writer tries
    first (writers spread over the replicas), and one that fails with an outage error is left for the
    next replica of that shard at once. A shard with no replica answering is an outage of that part
    only: the other parts of the window are still written, and a retry writes only the parts missing.
    """

    def __init__(self, address: ClickHouseAddress, stats: SinkStats, preferred: int = 0) -> None:
        self._address = address
        self._table = insert_table(address.cluster)
        self._sql: dict[frozenset[str], str] = {}  # by the optional columns an insert leaves out
        self._stats = stats
        self._clients: dict[tuple[str, int], Client] = {}
        self._features = ServerFeatures(())
        self._preferred = preferred
        self._shards: tuple[Shard, ...] = ()
        self._map: ShardMap | None = None
        self._current: dict[int, int] = {}  # shard index -> replica index that answered last

    def _connection(self, address: ClickHouseAddress) -> Client:
        key = (address.host, address.port)
        client = self._clients.get(key)
        if client is None:
            client = connect(address)
            self._features = ServerFeatures(server_version(client))
            self._clients[key] = client
        return client

    def _drop(self, address: ClickHouseAddress) -> None:
        client = self._clients.pop((address.host, address.port), None)
        if client is not None:
            client.disconnect()

    def reset(self) -> None:
        """Drop the connections (after an outage error); the next attempt reconnects."""
        clients, self._clients = self._clients, {}
        for client in clients.values():
            client.disconnect()

    def _shard_map(self) -> ShardMap | None:
        """None on a single server; on a cluster the shards, read once from ``system.clusters``."""
        if not self._address.cluster:
            return None
        if self._map is None:
            self._shards = read_shards(self._connection(self._address), self._address)
            self._map = ShardMap([shard.weight for shard in self._shards])
            self._current = {i: self._preferred % len(s.replicas) for i, s in enumerate(self._shards)}
        return self._map

    def _insert(self, columns: ResultColumns, token: str, shard: int | None) -> None:
        if shard is None:
            self._insert_on(self._connection(self._address), columns, token)
            return
        replicas = self._shards[shard].replicas
        first = self._current[shard]
        failure: Exception | None = None
        for step in range(len(replicas)):
            index = (first + step) % len(replicas)
            try:
                self._insert_on(self._connection(replicas[index]), columns, token)
            except Exception as exc:
                if classify_insert_error(exc) != "outage":
                    raise
                failure = exc
                self._drop(replicas[index])
                log.debug("shard %d replica %s failed: %s", shard + 1, replicas[index].url(), first_line(exc))
                continue
            self._current[shard] = index
            return
        assert failure is not None
        raise failure

    def _insert_on(self, client: Client, columns: ResultColumns, token: str) -> None:
        fault_point("before_insert")
        settings = insert_settings(self._features, token)
        started = time.monotonic()
        count = len(columns[0])
        # columns whose every row is an empty array (no metric missing, no text metric) are left to the
        # server's default
        empty = frozenset(COLUMN_NAMES[i] for i in OPTIONAL if not any(columns[i]))
        if empty:
            columns = [column for i, column in enumerate(columns) if COLUMN_NAMES[i] not in empty]
        sql = self._sql.get(empty)
        if sql is None:
            sql = self._sql[empty] = insert_results_sql(self._address.database, empty, self._table)
        client.execute(sql, columns, columnar=True, settings=settings or None)
        fault_point("after_insert")
        seconds = time.monotonic() - started
        with _STATS_LOCK:
            self._stats.inserts += 1
            self._stats.inserted += count
            self._stats.insert_seconds += seconds
        log.debug("inserted %d row(s) in %.3f s (%s)", count, seconds, token)
        SINK_INSERTS.inc()
        SINK_ROWS_INSERTED.inc(count)
        SINK_INSERT_LATENCY.observe(seconds)

    def _parts(self, columns: ResultColumns) -> list[tuple[Part, list[int] | None]]:
        """(month, shard) of every insert of a window, with its row indices (None: every row)."""
        shards = self._shard_map()
        parts: list[tuple[Part, list[int] | None]] = []
        for month, indices in split_columns_by_month(columns):
            if shards is None:
                parts.append(((month, 0), indices))
                continue
            rows = list(range(len(columns[0]))) if indices is None else indices
            clients = columns[CLIENT_ID]
            for shard, positions in enumerate(shards.split([clients[i] for i in rows])):
                if positions:
                    parts.append(((month, shard), [rows[p] for p in positions]))
        return parts

    def write(self, window: WindowRows, progress: Progress | None = None) -> Bad:
        """Insert the window's rows; returns (row index, error) of rows refused on their own.

        ``progress`` (kept by the caller across attempts) records the parts already stored: a retry
        skips them. Raises on an outage (connection refused, timeout, too many parts, disk full, a
        read-only replica without ZooKeeper...) after trying every part once.
        """
        if not window.count:
            return []
        done: Progress = {} if progress is None else progress
        columns = window.columns
        outage: Exception | None = None
        for part, indices in self._parts(columns):
            if part in done:
                continue
            try:
                done[part] = self._write_part(window, part, indices)
            except Exception as exc:
                if classify_insert_error(exc) != "outage":
                    raise
                outage = outage or exc  # this shard is down: the others' parts are still written
        if outage is not None:
            raise outage
        bad = [row for refused in done.values() for row in refused]
        with _STATS_LOCK:
            self._stats.refused_rows += len(bad)
        return bad

    def _write_part(self, window: WindowRows, part: Part, indices: list[int] | None) -> Bad:
        month, shard_index = part
        columns = window.columns
        group = columns if indices is None else take(columns, indices, window.positions)
        # each row's position in its record, for a subset of ``group`` (only a whole window's columns
        # can still hold FloatRows: a taken group holds each row's own values)
        group_positions = window.positions if indices is None else ()
        where = list(range(window.count)) if indices is None else indices
        shard = shard_index if self._address.cluster else None
        suffix = f":s{self._shards[shard_index].number}" if shard is not None else ""

        def insert(positions: list[int]) -> None:
            subset = group if len(positions) == len(where) else take(group, positions, group_positions)
            head, tail = where[positions[0]], where[positions[-1]]
            self._insert(subset, insert_token(window, month, head, tail, len(positions)) + suffix, shard)

        refused = insert_bisecting(list(range(len(where))), insert, self._count_data_error)
        return [(where[position], exc) for position, exc in refused]

    def _count_data_error(self, exc: BaseException) -> bool:
        if is_data_error(exc):
            SINK_INSERT_FAILURES.labels("data").inc()
            return True
        return False


def insert_token(window: WindowRows, month: int, head: int, tail: int, count: int) -> str:
    """The deduplication token of an insert of ``count`` rows of ``window`` from row ``head`` to ``tail``.

    Offsets name the records; the CRC of the first and last rows' (run, client) guards against a topic
    deleted and created again, whose offsets restart: its new records must not be taken for old ones.
    """
    runs, clients = window.columns[RUN_ID], window.columns[CLIENT_ID]
    crc = zlib.crc32(f"{runs[head]}\x00{clients[head]}\x00{runs[tail]}\x00{clients[tail]}".encode())
    offsets = window.offsets
    return f"{window.label()}:{month}:{offsets[head]}-{offsets[tail]}:{count}:{crc:08x}"


def write_with_retry(
    writer: WindowWriter,
    window: WindowRows,
    health: ClickHouseHealth,
    stop: threading.Event,
    backoff: float = BACKOFF_FIRST,
) -> Bad | None:
    """Write until it succeeds (returns the refused rows) or ``stop`` is set (returns None); raises
    ``UnexpectedInsertError`` after ``UNEXPECTED_ATTEMPTS`` unexpected errors (see the module docstring)."""
    unexpected = 0
    progress: Progress = {}
    while not stop.is_set():
        try:
            bad = writer.write(window, progress)
        except Exception as exc:
            writer.reset()
            if classify_insert_error(exc) == "unexpected":
                unexpected += 1
                SINK_INSERT_FAILURES.labels("unexpected").inc()
                log.error(
                    "insert of %s failed with an unexpected error (attempt %d of %d): %s",
                    window.label(),
                    unexpected,
                    UNEXPECTED_ATTEMPTS,
                    first_line(exc),
                    exc_info=unexpected == UNEXPECTED_ATTEMPTS,
                )
                if unexpected >= UNEXPECTED_ATTEMPTS:
                    raise UnexpectedInsertError(
                        f"insert of {window.label()} failed {unexpected} times with {first_line(exc)}: "
                        "not an outage and not the rows' data; stopping the sink, the window stays "
                        "uncommitted"
                    ) from exc
            else:
                health.failed(exc)
            stop.wait(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)
            continue
        health.succeeded()
        return bad
    return None
