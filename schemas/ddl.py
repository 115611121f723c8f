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

Values are typed (``RESULT_COLUMNS``): metric and computed values as parallel ``Array(Float64)``
columns beside their names, metrics that are not numbers as JSON text beside theirs; ``metrics`` and
``computed`` are ALIAS columns giving the JSON text of the earlier layout, which ``typed_migration``
moves a table over from. ``client_runs`` (fed by ``client_runs_mv``) is keyed by client for a client's
history; ``result_values`` / ``result_texts`` are long-form views for BI tools.

On a cluster (``cluster`` given) the same objects are created ``ON CLUSTER``: the tables the data lives
in are ``ReplicatedReplacingMergeTree`` / ``ReplicatedAggregatingMergeTree`` named ``*_local`` on every
server, and ``client_results`` / ``run_summary`` become Distributed tables over them, so readers use
the same names in both modes. Every row of a client is on one shard (the sink routes by
``SHARD_KEY``), so ``FINAL`` per shard is ``FINAL`` over the whole table. Replicated tables
deduplicate a retried identical block on every version (checksums kept in ZooKeeper).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

RESULTS_TABLE = "client_results"
RESULTS_LOCAL_TABLE = "client_results_local"  # a cluster's replicated table on each shard
RUN_SUMMARY_LOCAL = "run_summary_local"
# A client's shard: this hash of its id (``shard_hash`` computes it in Python), by the shard weights.
SHARD_KEY = "halfMD5(client_id)"
RESULTS_FINAL_VIEW = "client_results_final"
RUN_SUMMARY_TABLE = "run_summary"
RUN_SUMMARY_MV = "run_summary_mv"
RUN_SUMMARY_VIEW = "run_summary_final"
CLIENT_RUNS_TABLE = "client_runs"
CLIENT_RUNS_LOCAL = "client_runs_local"  # a cluster's replicated table on each shard
CLIENT_RUNS_MV = "client_runs_mv"
CLIENT_LATEST_VIEW = "client_latest"
RESULT_VALUES_VIEW = "result_values"
RESULT_TEXTS_VIEW = "result_texts"
DEDUP_WINDOW = 1000
DEDUP_SINCE = (22, 2)
# LowCardinality is experimental on 18.16 (allow_experimental_low_cardinality_type) and 18.16 cannot send
# it to clickhouse-driver: names are Array(String) there, Array(LowCardinality(String)) on current servers.
LOW_CARDINALITY_SINCE = DEDUP_SINCE
NAMES = "Array(String)"

# (column, ClickHouse type on 18.16) in insert order; the sink builds one Python list per column. Metric
# and computed values are parallel arrays: ``metric_names[i]`` is the name of ``metric_values[i]``.
# Metrics that are not numbers (strings, booleans, flat lists and objects) are in ``text_names`` /
# ``text_values``, each value as its JSON text. Name columns are ``NAMES`` (``result_columns`` gives
# each server's types).
RESULT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("run_id", "String"),
    ("client_id", "String"),
    ("requested_at", "DateTime('UTC')"),
    ("collected_at", "DateTime('UTC')"),
    ("attempt", "UInt16"),
    ("status", "String"),
    ("metric_names", NAMES),
    ("metric_values", "Array(Float64)"),
    ("missing", NAMES),
    ("computed_names", NAMES),
    ("computed_values", "Array(Float64)"),
    ("text_names", NAMES),
    ("text_values", "Array(String)"),
    ("version", "UInt64"),
)
NAME_COLUMNS = frozenset(("metric_names", "missing", "computed_names", "text_names"))
TYPED_COLUMNS = (
    "metric_names",
    "metric_values",
    "computed_names",
    "computed_values",
    "text_names",
    "text_values",
)


def names_type(version: tuple[int, ...]) -> str:
    """The type of a column of names on a server of ``version``."""
    return "Array(LowCardinality(String))" if version >= LOW_CARDINALITY_SINCE else NAMES


def result_columns(version: tuple[int, ...]) -> tuple[tuple[str, str], ...]:
    """``RESULT_COLUMNS`` with the types of a server of ``version``."""
    names = names_type(version)
    return tuple((name, names if name in NAME_COLUMNS else ctype) for name, ctype in RESULT_COLUMNS)


def _json_pairs(names: str, values: str, numeric: bool) -> str:
    """SQL: the ``"name":value`` pieces of two parallel arrays (names are written as they are; a number
    as ``toString``, a text value is JSON already)."""
    value = "toString(v)" if numeric else "v"
    return f"arrayMap((k, v) -> concat('\"', k, '\":', {value}), {names}, {values})"


# The JSON text of the earlier layout's ``metrics`` and ``computed`` columns, as ALIAS columns computed
# from the typed ones at read time (nothing stored): readers of the JSON text keep working.
JSON_ALIASES: tuple[tuple[str, str], ...] = (
    (
        "metrics",
        "concat('{', arrayStringConcat(arrayConcat("
        f"{_json_pairs('metric_names', 'metric_values', True)}, "
        f"{_json_pairs('text_names', 'text_values', False)}), ','), '}}')",
    ),
    (
        "computed",
        "concat('{', arrayStringConcat("
        f"{_json_pairs('computed_names', 'computed_values', True)}, ','), '}}')",
    ),
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
    columns = [f"{name} {ctype}" for name, ctype in result_columns(version)]
    columns += [f"{name} String ALIAS {expression}" for name, expression in JSON_ALIASES]
    body = ",\n    ".join(columns)
    dedup = version >= DEDUP_SINCE and cluster is None  # replicated tables deduplicate blocks anyway
    settings = f"\nSETTINGS non_replicated_deduplication_window = {DEDUP_WINDOW}" if dedup else ""
    table = insert_table(cluster)
    engine = _engine("ReplacingMergeTree", database, table, cluster, "version")
    return f"""CREATE TABLE IF NOT EXISTS {database}.{table}{_on(cluster)} (
    {body}
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


# (column, type) of ``client_runs``: which runs a client took part in, how each went, no values. Keyed by
# client first: a client's history and latest result read a few granules here, then the values of those
# (run, client) keys from ``client_results`` by its primary key. A copy of every value keyed by client
# would double what ClickHouse writes and merges per stored row; these columns are ~50 bytes of it.
CLIENT_RUNS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("client_id", "String"),
    ("run_id", "String"),
    ("requested_at", "DateTime('UTC')"),
    ("collected_at", "DateTime('UTC')"),
    ("attempt", "UInt16"),
    ("status", "String"),
    ("missing", NAMES),
    ("version", "UInt64"),
)


def client_runs_table(database: str, version: tuple[int, ...], cluster: str | None = None) -> str:
    """``client_runs`` (see ``CLIENT_RUNS_COLUMNS``), fed by ``client_runs_mv``; on a cluster each
    shard's ``client_runs_local`` (replicated), a Distributed ``client_runs`` over them."""
    names = names_type(version)
    body = ",\n    ".join(f"{n} {names if n in NAME_COLUMNS else t}" for n, t in CLIENT_RUNS_COLUMNS)
    table = CLIENT_RUNS_LOCAL if cluster else CLIENT_RUNS_TABLE
    engine = _engine("ReplacingMergeTree", database, table, cluster, "version")
    return f"""CREATE TABLE IF NOT EXISTS {database}.{table}{_on(cluster)} (
    {body}
) ENGINE = {engine}
PARTITION BY toYYYYMM(requested_at)
ORDER BY (client_id, run_id)"""


def client_runs_views(database: str, cluster: str | None = None) -> list[str]:
    """The materialized view that feeds ``client_runs`` (on a cluster: each server's local table from
    the blocks inserted into it) and ``client_latest`` (a client's last run)."""
    names = ", ".join(name for name, _ in CLIENT_RUNS_COLUMNS)
    target = CLIENT_RUNS_LOCAL if cluster else CLIENT_RUNS_TABLE
    return [
        f"""CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.{CLIENT_RUNS_MV}{_on(cluster)}
TO {database}.{target}
AS SELECT {names}
FROM {database}.{insert_table(cluster)}""",
        f"""CREATE VIEW IF NOT EXISTS {database}.{CLIENT_LATEST_VIEW}{_on(cluster)} AS
SELECT
    client_id,
    max(t) AS requested_at,
    argMax(r, t) AS run_id,
    argMax(s, t) AS status,
    argMax(m, t) AS missing,
    argMax(c, t) AS collected_at,
    count() AS runs
FROM (
    SELECT client_id, requested_at AS t, run_id AS r, status AS s, missing AS m, collected_at AS c
    FROM {database}.{CLIENT_RUNS_TABLE} FINAL
)
GROUP BY client_id""",
    ]


def results_views(database: str, cluster: str | None = None) -> list[str]:
    """The long-form views for BI tools:
    ``result_values`` (run, client, kind = metric | computed, name, value: one row per number) and
    ``result_texts`` (the metrics that are not numbers, one row each, the value as JSON text)."""
    table = f"{database}.{RESULTS_TABLE}"
    keys = "run_id, client_id, requested_at, collected_at, status"
    long_form = [
        f"SELECT {keys}, '{kind}' AS kind, name, value FROM {table} FINAL "
        f"ARRAY JOIN {kind}_names AS name, {kind}_values AS value"
        for kind in ("metric", "computed")
    ]
    return [
        f"""CREATE VIEW IF NOT EXISTS {database}.{RESULT_VALUES_VIEW}{_on(cluster)} AS
{long_form[0]}
UNION ALL
{long_form[1]}""",
        f"""CREATE VIEW IF NOT EXISTS {database}.{RESULT_TEXTS_VIEW}{_on(cluster)} AS
SELECT {keys}, name, value_json FROM {table} FINAL
ARRAY JOIN text_names AS name, text_values AS value_json""",
    ]


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

    ``version`` is the server's: newer features (the deduplication window, LowCardinality names) only
    where present. For a ``client_results`` created before the upgrade, an ``ALTER ... MODIFY SETTING``
    sets the window; one of the JSON-text layout is moved over by ``typed_migration`` first.
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
    statements += [
        results_final_view(database, cluster),
        *results_views(database, cluster),
        run_summary_table(database, cluster),
    ]
    if cluster:
        statements.append(distributed_table(database, cluster, RUN_SUMMARY_TABLE, RUN_SUMMARY_LOCAL))
    statements += [run_summary_mv(database, cluster), run_summary_view(database, cluster)]
    statements.append(client_runs_table(database, version, cluster))
    if cluster:
        statements.append(
            distributed_table(database, cluster, CLIENT_RUNS_TABLE, CLIENT_RUNS_LOCAL, SHARD_KEY)
        )
    statements += client_runs_views(database, cluster)
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


# The JSON-text layout's columns that the typed layout replaced (``metrics`` and ``computed`` were String
# columns of JSON text; ``missing`` stays) and, in SQL, how each typed column follows from that text.
# The text was orjson's ``{"name":number,...}``: names are the quoted keys, values the numbers after them
# (names keep their JSON escapes, which no configured metric name has).
_KEYS = 'extractAll({0}, \'"((?:[^"\\\\\\\\]|\\\\\\\\.)*)":\')'
_NUMBERS = "arrayMap(x -> toFloat64(x), extractAll({0}, '\":(-?[0-9][0-9.eE+-]*)'))"
TEXT_CONVERSIONS: tuple[tuple[str, str], ...] = (
    ("metric_names", _KEYS.format("metrics")),
    ("metric_values", _NUMBERS.format("metrics")),
    ("computed_names", _KEYS.format("computed")),
    ("computed_values", _NUMBERS.format("computed")),
)


@dataclass(frozen=True)
class TypedMigration:
    """The steps from the JSON-text layout to the typed one, in place (``streams.clickhouse.client.migrate``
    runs them, each only when the table needs it, so a second run does nothing):

    1. ``add_columns``: the typed columns (empty arrays for the existing rows);
    2. ``pending`` counts rows whose text is not converted yet; ``convert`` (a mutation, waited for)
       fills their typed columns from the text;
    3. ``drop_text``: the stored text columns, once no row is pending;
    4. ``add_aliases``: ``metrics`` / ``computed`` again, as ALIAS columns (JSON text from the typed
       columns at read time), for the readers of the text.
    """

    add_columns: list[str]
    pending: str
    convert: str
    drop_text: list[str]
    add_aliases: list[str]


def typed_migration(database: str, version: tuple[int, ...]) -> TypedMigration:
    table = f"{database}.{RESULTS_TABLE}"
    types = dict(result_columns(version))
    after = "missing"
    add_columns = []
    for name in TYPED_COLUMNS:
        add_columns.append(f"ALTER TABLE {table} ADD COLUMN {name} {types[name]} AFTER {after}")
        after = name
    unconverted = " OR ".join(
        f"({text} NOT IN ('', '{{}}') AND empty({text_name}_names))"
        for text, text_name in (("metrics", "metric"), ("computed", "computed"))
    )
    sets = ", ".join(f"{name} = {expression}" for name, expression in TEXT_CONVERSIONS)
    return TypedMigration(
        add_columns=add_columns,
        pending=f"SELECT count() FROM {table} WHERE {unconverted}",
        convert=f"ALTER TABLE {table} UPDATE {sets} WHERE {unconverted}",
        drop_text=[f"ALTER TABLE {table} DROP COLUMN {name}" for name, _ in JSON_ALIASES],
        add_aliases=[
            f"ALTER TABLE {table} ADD COLUMN {name} String ALIAS {expr}" for name, expr in JSON_ALIASES
        ],
    )


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


OPTIONAL_RESULT_COLUMNS = frozenset(("missing", "text_names", "text_values"))
"""Columns an insert may leave out when every row holds their default (an empty array): the server fills
them in, and the client does not serialize a column of empty arrays."""


def insert_results_sql(
    database: str, without: frozenset[str] = frozenset(), table: str = RESULTS_TABLE
) -> str:
    """The INSERT for a columnar batch (rows always go as a parameter, never inline: 18.16 hangs on that).

    ``without``: columns (of ``OPTIONAL_RESULT_COLUMNS``) the batch leaves to their default; ``table``:
    ``insert_table(cluster)``.
    """
    names = ", ".join(name for name, _ in RESULT_COLUMNS if name not in without)
    return f"INSERT INTO {database}.{table} ({names}) VALUES"
