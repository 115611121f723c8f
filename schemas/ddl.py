"""The ClickHouse schema, in one place. Every statement runs on ClickHouse 18.16 and on a current server.

``client_results`` is a ReplacingMergeTree ordered by (run_id, client_id): a result delivered twice
(after a crash, a rebalance or a replay) is the same key, so queries with ``FINAL`` (or the
``client_results_final`` view) see it once. The version column is the request's attempt number, a
deterministic function of the message (``result_version``): a monotonic order over what a later,
better result is (the attempt, then ``ok`` over ``partial``, then the collection time in ms), so a
later attempt replaces an earlier one, a full result replaces a partial one of the same attempt (the
partial written during a subsystem outage, the full one after a replay), and a re-delivered copy of
the same result ties with its identical twin. Tables created before this format hold
``version = attempt``; ``version_migration`` copies those rows once with their new version (18.16
cannot ``ALTER ... UPDATE`` a key column), so each (run, client) keeps its best row.
The table is partitioned by month of ``requested_at``; the sink splits every window by that month so
each insert lands in one partition and is atomic.

``run_summary`` is an AggregatingMergeTree fed by the materialized view ``run_summary_mv`` on every
insert into ``client_results``. It only keeps aggregates that a re-delivered row cannot change
(distinct clients, min, max), plus ``deliveries`` (every row inserted, duplicates included) so that
re-deliveries show. Read it through ``run_summary_final`` (the -Merge of each state per run).

On a server with ``insert_deduplication_token`` (22.2+), ``client_results`` also keeps the last
``DEDUP_WINDOW`` insert tokens (``non_replicated_deduplication_window``), so a retried insert of the
same offset range is dropped by the server before it becomes a duplicate row at all.

On a cluster (``cluster`` given) the same objects are created ``ON CLUSTER``: the tables the data lives
in are ``ReplicatedReplacingMergeTree`` / ``ReplicatedAggregatingMergeTree`` named ``*_local`` on every
server, and ``client_results`` / ``run_summary`` become Distributed tables over them, so readers use
the same names in both modes. Every row of a client is on one shard (the sink routes by
``SHARD_KEY``), so ``FINAL`` per shard is ``FINAL`` over the whole table. Replicated tables
deduplicate a retried identical block on every version (checksums kept in ZooKeeper).
"""

from __future__ import annotations

import hashlib

RESULTS_TABLE = "client_results"
RESULTS_LOCAL_TABLE = "client_results_local"  # a cluster's replicated table on each shard
RUN_SUMMARY_LOCAL = "run_summary_local"
# A client's shard: this hash of its id (``shard_hash`` computes it in Python), by the shard weights.
SHARD_KEY = "halfMD5(client_id)"
RESULTS_FINAL_VIEW = "client_results_final"
RUN_SUMMARY_TABLE = "run_summary"
RUN_SUMMARY_MV = "run_summary_mv"
RUN_SUMMARY_VIEW = "run_summary_final"
DEDUP_WINDOW = 1000
DEDUP_SINCE = (22, 2)

# (column, ClickHouse type) in insert order; the sink builds one Python list per column.
RESULT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("run_id", "String"),
    ("client_id", "String"),
    ("requested_at", "DateTime('UTC')"),
    ("collected_at", "DateTime('UTC')"),
    ("attempt", "UInt16"),
    ("status", "String"),
    ("metrics", "String"),
    ("missing", "Array(String)"),
    ("computed", "String"),
    ("version", "UInt64"),
)

# Distinct clients are counted by a 64-bit hash of the client id: the view's uniqExact states then hold
# 8-byte keys instead of hashing each id to 128 bits, which made the view ~1 µs per inserted row of the
# server's CPU cheaper on 18.16 (docs/benchmarks.md). Two ids of one run share a hash with probability
# ~n²/2^65 (1e-8 for 700k clients): counts stay exact for any fleet this system is built for.
CLIENT_KEY = "cityHash64(client_id)"

# (column, state type, state expression over client_results, merge expression) of run_summary.
RUN_SUMMARY_COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    ("clients", "AggregateFunction(uniqExact, UInt64)", f"uniqExactState({CLIENT_KEY})", "uniqExactMerge"),
    (
        "ok_clients",
        "AggregateFunction(uniqExactIf, UInt64, UInt8)",
        f"uniqExactIfState({CLIENT_KEY}, status = 'ok')",
        "uniqExactIfMerge",
    ),
    (
        "partial_clients",
        "AggregateFunction(uniqExactIf, UInt64, UInt8)",
        f"uniqExactIfState({CLIENT_KEY}, status = 'partial')",
        "uniqExactIfMerge",
    ),
    ("deliveries", "AggregateFunction(count)", "countState()", "countMerge"),
    ("first_collected_at", "AggregateFunction(min, DateTime('UTC'))", "minState(collected_at)", "minMerge"),
    ("last_collected_at", "AggregateFunction(max, DateTime('UTC'))", "maxState(collected_at)", "maxMerge"),
    ("max_attempt", "AggregateFunction(max, UInt16)", "maxState(attempt)", "maxMerge"),
)


def _on(cluster: str | None) -> str:
    return f" ON CLUSTER {cluster}" if cluster else ""


def _zookeeper_path(database: str, table: str) -> str:
    """Where the replicas of one shard of ``table`` meet in ZooKeeper (``{shard}`` from the macros)."""
    return f"/clickhouse/tables/{{shard}}/{database}/{table}"


def _engine(family: str, database: str, table: str, cluster: str | None, *args: str) -> str:
    """``family(args)`` on a single server; ``Replicated<family>(path, '{replica}', args)`` on a cluster."""
    if cluster is None:
        return f"{family}({', '.join(args)})"
    replicated = (f"'{_zookeeper_path(database, table)}'", "'{replica}'", *args)
    return f"Replicated{family}({', '.join(replicated)})"


def results_table(database: str, version: tuple[int, ...], cluster: str | None = None) -> str:
    """The table the sink inserts into: ``client_results`` on a single server, each shard's
    ``client_results_local`` (replicated) on a cluster."""
    columns = ",\n    ".join(f"{name} {ctype}" for name, ctype in RESULT_COLUMNS)
    dedup = version >= DEDUP_SINCE and cluster is None  # replicated tables deduplicate blocks anyway
    settings = f"\nSETTINGS non_replicated_deduplication_window = {DEDUP_WINDOW}" if dedup else ""
    table = insert_table(cluster)
    engine = _engine("ReplacingMergeTree", database, table, cluster, "version")
    return f"""CREATE TABLE IF NOT EXISTS {database}.{table}{_on(cluster)} (
    {columns}
) ENGINE = {engine}
PARTITION BY toYYYYMM(requested_at)
ORDER BY (run_id, client_id){settings}"""


def distributed_table(database: str, cluster: str, table: str, local: str, key: str | None = None) -> str:
    """A Distributed table named ``table`` over every shard's ``local`` (reads; inserts by ``key``)."""
    sharding = f", {key}" if key else ""
    return f"""CREATE TABLE IF NOT EXISTS {database}.{table}{_on(cluster)}
AS {database}.{local}
ENGINE = Distributed({cluster}, {database}, {local}{sharding})"""


def results_final_view(database: str, cluster: str | None = None) -> str:
    """``client_results_final``: every (run, client) once (on a cluster, FINAL runs on each shard)."""
    return f"""CREATE VIEW IF NOT EXISTS {database}.{RESULTS_FINAL_VIEW}{_on(cluster)} AS
SELECT * FROM {database}.{RESULTS_TABLE} FINAL"""


def run_summary_table(database: str, cluster: str | None = None) -> str:
    columns = ",\n    ".join(f"{name} {ctype}" for name, ctype, _, _ in RUN_SUMMARY_COLUMNS)
    table = RUN_SUMMARY_LOCAL if cluster else RUN_SUMMARY_TABLE
    engine = _engine("AggregatingMergeTree", database, table, cluster)
    return f"""CREATE TABLE IF NOT EXISTS {database}.{table}{_on(cluster)} (
    run_id String,
    {columns}
) ENGINE = {engine}
ORDER BY run_id"""


def run_summary_mv(database: str, cluster: str | None = None) -> str:
    """The materialized view from the table the sink inserts into to the (local) summary table: on a
    cluster every server aggregates the blocks inserted into it, and the summary replicates."""
    states = ",\n    ".join(f"{expr} AS {name}" for name, _, expr, _ in RUN_SUMMARY_COLUMNS)
    target = RUN_SUMMARY_LOCAL if cluster else RUN_SUMMARY_TABLE
    return f"""CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.{RUN_SUMMARY_MV}{_on(cluster)}
TO {database}.{target}
AS SELECT
    run_id,
    {states}
FROM {database}.{insert_table(cluster)}
GROUP BY run_id"""


def run_summary_view(database: str, cluster: str | None = None) -> str:
    """``run_summary_final``: the -Merge of each state per run (over every shard on a cluster)."""
    merges = ",\n    ".join(f"{merge}({name}) AS {name}" for name, _, _, merge in RUN_SUMMARY_COLUMNS)
    return f"""CREATE VIEW IF NOT EXISTS {database}.{RUN_SUMMARY_VIEW}{_on(cluster)} AS
SELECT
    run_id,
    {merges}
FROM {database}.{RUN_SUMMARY_TABLE}
GROUP BY run_id"""


def database_ddl(database: str, version: tuple[int, ...] = (18, 16), cluster: str | None = None) -> list[str]:
    """The statements that create the database, tables and views, in order; each is idempotent.

    ``version`` is the server's: newer features (the deduplication window) only where present. For a
    ``client_results`` created before the upgrade, an ``ALTER ... MODIFY SETTING`` sets the window.
    ``cluster`` (a cluster of the servers' ``remote_servers``): every statement runs ``ON CLUSTER``,
    the tables are replicated ``*_local`` ones and ``client_results`` / ``run_summary`` are Distributed
    tables over them, so every reader queries the same names in both modes.
    """
    statements = [
        f"CREATE DATABASE IF NOT EXISTS {database}{_on(cluster)}",
        results_table(database, version, cluster),
    ]
    if cluster:
        statements.append(distributed_table(database, cluster, RESULTS_TABLE, RESULTS_LOCAL_TABLE, SHARD_KEY))
    statements += [results_final_view(database, cluster), run_summary_table(database, cluster)]
    if cluster:
        statements.append(distributed_table(database, cluster, RUN_SUMMARY_TABLE, RUN_SUMMARY_LOCAL))
    statements += [run_summary_mv(database, cluster), run_summary_view(database, cluster)]
    if version >= DEDUP_SINCE and cluster is None:
        statements.append(
            f"ALTER TABLE {database}.{RESULTS_TABLE} "
            f"MODIFY SETTING non_replicated_deduplication_window = {DEDUP_WINDOW}"
        )
    return statements


def insert_table(cluster: str | None = None) -> str:
    """The table the sink inserts into: on a cluster, the local replicated table of a shard."""
    return RESULTS_LOCAL_TABLE if cluster else RESULTS_TABLE


def shard_hash(client_id: str) -> int:
    """``halfMD5(client_id)`` as the server computes it (``SHARD_KEY``): the first 8 bytes of the MD5
    of the UTF-8 id, big-endian. The sink routes rows with it; the Distributed table's sharding key
    is the same expression, so both put a client on the same shard."""
    return int.from_bytes(hashlib.md5(client_id.encode()).digest()[:8], "big")


VERSION_FORMAT = 1 << 62  # set in every version of this format; a version without it is an attempt number
_ATTEMPT_SHIFT, _OK_SHIFT = 49, 48  # collected_at_ms <= 253402300799999 < 2**48; attempt <= 1000 < 2**10


def result_version(attempt: int, ok: bool, collected_at_ms: int) -> int:
    """The ``version`` of a result row: a later, better result of a (run, client) has a greater one.

    Ordered by the attempt, then completeness (``ok`` above ``partial``), then the collection time (ms);
    ``VERSION_FORMAT`` marks the format, so rows written before it (version = attempt) are told apart.
    """
    return VERSION_FORMAT | attempt << _ATTEMPT_SHIFT | int(ok) << _OK_SHIFT | collected_at_ms


def _version_sql() -> str:
    """``result_version`` in SQL over a stored row (``collected_at`` holds seconds: ms = s * 1000)."""
    return (
        f"bitOr(bitOr(toUInt64({VERSION_FORMAT}), bitShiftLeft(toUInt64(attempt), {_ATTEMPT_SHIFT})), "
        f"bitOr(bitShiftLeft(toUInt64(status = 'ok'), {_OK_SHIFT}), toUInt64(collected_at) * 1000))"
    )


def version_migration(database: str) -> tuple[str, str]:
    """(check, migration) for rows written before ``VERSION_FORMAT``.

    The check is cheap (one UInt64 column): whether any row of the old format is left. The migration
    re-inserts the rows of the (run, client) keys that have no row of the new format yet, with their
    new version (same key, greater version: the copy replaces the original under FINAL and in merges,
    the copy landing in the original's partition). Keys that already have a new-format row are left
    alone (that row wins anyway), so running it again copies nothing; the originals stay on disk until
    background merges drop them, and until then the check still finds them."""
    table = f"{database}.{RESULTS_TABLE}"
    new_keys = f"(SELECT run_id, client_id FROM {table} WHERE version >= {VERSION_FORMAT})"
    where = f"version < {VERSION_FORMAT} AND (run_id, client_id) NOT IN {new_keys}"
    others = ", ".join(name for name, _ in RESULT_COLUMNS if name != "version")
    names = ", ".join(name for name, _ in RESULT_COLUMNS)
    check = f"SELECT count() FROM {table} WHERE version < {VERSION_FORMAT}"
    migration = f"INSERT INTO {table} ({names}) SELECT {others}, {_version_sql()} FROM {table} WHERE {where}"
    return check, migration


OPTIONAL_RESULT_COLUMNS = frozenset(("missing",))
"""Columns an insert may leave out when every row holds their default (an empty array): the server fills
them in, and the client does not serialize a column of empty arrays row by row."""


def insert_results_sql(
    database: str, without: frozenset[str] = frozenset(), table: str = RESULTS_TABLE
) -> str:
    """The INSERT for a columnar batch (rows always go as a parameter, never inline: 18.16 hangs on that).

    ``without``: columns (of ``OPTIONAL_RESULT_COLUMNS``) the batch leaves to their default; ``table``:
    ``insert_table(cluster)``.
    """
    names = ", ".join(name for name, _ in RESULT_COLUMNS if name not in without)
    return f"INSERT INTO {database}.{table} ({names}) VALUES"
