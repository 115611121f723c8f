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
"""

from __future__ import annotations

from dataclasses import dataclass

RESULTS_TABLE = "client_results"
RESULTS_FINAL_VIEW = "client_results_final"
RUN_SUMMARY_TABLE = "run_summary"
RUN_SUMMARY_MV = "run_summary_mv"
RUN_SUMMARY_VIEW = "run_summary_final"
CLIENT_RUNS_TABLE = "client_runs"
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


def results_table(
    database: str, version: tuple[int, ...], engine: str = "ReplacingMergeTree(version)"
) -> str:
    """``client_results``: one row per delivered result, collapsed per (run, client) by ``version``."""
    columns = [f"{name} {ctype}" for name, ctype in result_columns(version)]
    columns += [f"{name} String ALIAS {expression}" for name, expression in JSON_ALIASES]
    body = ",\n    ".join(columns)
    dedup = version >= DEDUP_SINCE
    settings = f"\nSETTINGS non_replicated_deduplication_window = {DEDUP_WINDOW}" if dedup else ""
    return f"""CREATE TABLE IF NOT EXISTS {database}.{RESULTS_TABLE} (
    {body}
) ENGINE = {engine}
PARTITION BY toYYYYMM(requested_at)
ORDER BY (run_id, client_id){settings}"""


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


def client_runs_table(
    database: str, version: tuple[int, ...], engine: str = "ReplacingMergeTree(version)"
) -> str:
    """``client_runs`` (see ``CLIENT_RUNS_COLUMNS``), fed by ``client_runs_mv``."""
    names = names_type(version)
    body = ",\n    ".join(f"{n} {names if n in NAME_COLUMNS else t}" for n, t in CLIENT_RUNS_COLUMNS)
    return f"""CREATE TABLE IF NOT EXISTS {database}.{CLIENT_RUNS_TABLE} (
    {body}
) ENGINE = {engine}
PARTITION BY toYYYYMM(requested_at)
ORDER BY (client_id, run_id)"""


def client_runs_views(database: str) -> list[str]:
    """The materialized view that feeds ``client_runs`` and ``client_latest`` (a client's last run)."""
    names = ", ".join(name for name, _ in CLIENT_RUNS_COLUMNS)
    return [
        f"""CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.{CLIENT_RUNS_MV}
TO {database}.{CLIENT_RUNS_TABLE}
AS SELECT {names}
FROM {database}.{RESULTS_TABLE}""",
        f"""CREATE VIEW IF NOT EXISTS {database}.{CLIENT_LATEST_VIEW} AS
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


def results_views(database: str) -> list[str]:
    """``client_results_final`` (every column, FINAL) and the long-form views for BI tools:
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
        f"""CREATE VIEW IF NOT EXISTS {database}.{RESULTS_FINAL_VIEW} AS
SELECT * FROM {table} FINAL""",
        f"""CREATE VIEW IF NOT EXISTS {database}.{RESULT_VALUES_VIEW} AS
{long_form[0]}
UNION ALL
{long_form[1]}""",
        f"""CREATE VIEW IF NOT EXISTS {database}.{RESULT_TEXTS_VIEW} AS
SELECT {keys}, name, value_json FROM {table} FINAL
ARRAY JOIN text_names AS name, text_values AS value_json""",
    ]


def _run_summary(database: str) -> list[str]:
    columns = ",\n    ".join(f"{name} {ctype}" for name, ctype, _, _ in RUN_SUMMARY_COLUMNS)
    states = ",\n    ".join(f"{expr} AS {name}" for name, _, expr, _ in RUN_SUMMARY_COLUMNS)
    merges = ",\n    ".join(f"{merge}({name}) AS {name}" for name, _, _, merge in RUN_SUMMARY_COLUMNS)
    return [
        f"""CREATE TABLE IF NOT EXISTS {database}.{RUN_SUMMARY_TABLE} (
    run_id String,
    {columns}
) ENGINE = AggregatingMergeTree()
ORDER BY run_id""",
        f"""CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.{RUN_SUMMARY_MV}
TO {database}.{RUN_SUMMARY_TABLE}
AS SELECT
    run_id,
    {states}
FROM {database}.{RESULTS_TABLE}
GROUP BY run_id""",
        f"""CREATE VIEW IF NOT EXISTS {database}.{RUN_SUMMARY_VIEW} AS
SELECT
    run_id,
    {merges}
FROM {database}.{RUN_SUMMARY_TABLE}
GROUP BY run_id""",
    ]


def database_ddl(database: str, version: tuple[int, ...] = (18, 16)) -> list[str]:
    """The statements that create the database, tables and views, in order; each is idempotent.

    ``version`` is the server's: newer features (the deduplication window, LowCardinality names) only
    where present. For a ``client_results`` created before the upgrade, an ``ALTER ... MODIFY SETTING``
    sets the window. A table of the JSON-text layout is moved over by ``typed_migration`` first.
    """
    statements = [
        f"CREATE DATABASE IF NOT EXISTS {database}",
        results_table(database, version),
        *results_views(database),
        *_run_summary(database),
        client_runs_table(database, version),
        *client_runs_views(database),
    ]
    if version >= DEDUP_SINCE:
        statements.append(
            f"ALTER TABLE {database}.{RESULTS_TABLE} "
            f"MODIFY SETTING non_replicated_deduplication_window = {DEDUP_WINDOW}"
        )
    return statements


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


def insert_results_sql(database: str, without: frozenset[str] = frozenset()) -> str:
    """The INSERT for a columnar batch (rows always go as a parameter, never inline: 18.16 hangs on that).

    ``without``: columns (of ``OPTIONAL_RESULT_COLUMNS``) the batch leaves to their default.
    """
    names = ", ".join(name for name, _ in RESULT_COLUMNS if name not in without)
    return f"INSERT INTO {database}.{RESULTS_TABLE} ({names}) VALUES"
