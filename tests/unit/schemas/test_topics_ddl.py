"""Topic declarations and the ClickHouse DDL text (no server: only the statements' shape)."""

from __future__ import annotations

from schemas import ddl
from schemas.topics import ALL_TOPICS, REQUESTS, RUNS


def test_topic_names_and_partitions() -> None:
    assert REQUESTS.name("kcollect.") == "kcollect.requests"
    assert REQUESTS.partition_count(8) == 8
    assert RUNS.partition_count(8) == 1
    assert RUNS.config == {"cleanup.policy": "compact"}
    suffixes = [t.suffix for t in ALL_TOPICS]
    assert len(suffixes) == len(set(suffixes))


def test_insert_sql_uses_result_columns_order() -> None:
    sql = ddl.insert_results_sql("db")
    names = ", ".join(name for name, _ in ddl.RESULT_COLUMNS)
    assert sql == f"INSERT INTO db.client_results ({names}) VALUES"
    assert names.startswith("run_id, client_id, requested_at")


def test_ddl_for_old_server_has_no_dedup_window() -> None:
    statements = ddl.database_ddl("db", (18, 16))
    assert statements[0] == "CREATE DATABASE IF NOT EXISTS db"
    assert all("IF NOT EXISTS" in s for s in statements)
    assert not any("non_replicated_deduplication_window" in s for s in statements)
    table = statements[1]
    assert "ReplacingMergeTree(version)" in table
    assert "ORDER BY (run_id, client_id)" in table
    for name, ctype in ddl.RESULT_COLUMNS:
        assert f"{name} {ctype}" in table


def test_ddl_for_new_server_sets_dedup_window() -> None:
    statements = ddl.database_ddl("db", (22, 2))
    assert f"non_replicated_deduplication_window = {ddl.DEDUP_WINDOW}" in statements[1]
    assert statements[-1].startswith("ALTER TABLE db.client_results MODIFY SETTING")
    assert len(statements) == len(ddl.database_ddl("db", (22, 1))) + 1
