"""The ClickHouse schema, in one place. Every statement runs on ClickHouse 18.16 and on a current server.

``client_results`` is a ReplacingMergeTree ordered by (run_id, client_id): a result delivered twice
(after a crash or a rebalance) is the same key, so queries with ``FINAL`` (or the ``client_results_final``
view) see it once. The version column is the request's attempt number, a deterministic function of the
message: a later attempt replaces an earlier one, a re-delivered copy of the same attempt replaces its
twin. Rows of one run share ``requested_at`` (the run's start), so a run lives in one monthly partition
and each insert of a run's rows is atomic.
"""

from __future__ import annotations

RESULTS_TABLE = "client_results"
RESULTS_FINAL_VIEW = "client_results_final"

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


def database_ddl(database: str) -> list[str]:
    """The statements that create the database and its tables, in order; each is idempotent."""
    columns = ",\n    ".join(f"{name} {ctype}" for name, ctype in RESULT_COLUMNS)
    return [
        f"CREATE DATABASE IF NOT EXISTS {database}",
        f"""CREATE TABLE IF NOT EXISTS {database}.{RESULTS_TABLE} (
    {columns}
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(requested_at)
ORDER BY (run_id, client_id)""",
        f"""CREATE VIEW IF NOT EXISTS {database}.{RESULTS_FINAL_VIEW} AS
SELECT * FROM {database}.{RESULTS_TABLE} FINAL""",
    ]


def insert_results_sql(database: str) -> str:
    """The INSERT for a columnar batch (rows always go as a parameter, never inline: 18.16 hangs on that)."""
    names = ", ".join(name for name, _ in RESULT_COLUMNS)
    return f"INSERT INTO {database}.{RESULTS_TABLE} ({names}) VALUES"
