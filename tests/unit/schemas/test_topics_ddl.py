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


def test_names_are_low_cardinality_only_on_current_servers() -> None:
    old, new = dict(ddl.result_columns((18, 16))), dict(ddl.result_columns((24, 3)))
    for name in ddl.NAME_COLUMNS:
        assert old[name] == "Array(String)" and new[name] == "Array(LowCardinality(String))"
    assert old["text_values"] == new["text_values"] == "Array(String)"
    assert old["metric_values"] == new["metric_values"] == "Array(Float64)"
    assert not any("LowCardinality" in s for s in ddl.database_ddl("db", (18, 16)))


def test_text_columns_are_aliases_of_the_typed_ones() -> None:
    table = ddl.results_table("db", (18, 16))
    assert "metrics String ALIAS" in table and "computed String ALIAS" in table
    assert "metrics String," not in table  # nothing stored as text


def test_typed_migration_touches_only_unconverted_rows() -> None:
    steps = ddl.typed_migration("db", (18, 16))
    assert [s.split(" ADD COLUMN ")[1].split()[0] for s in steps.add_columns] == list(ddl.TYPED_COLUMNS)
    assert (
        "empty(metric_names)" in steps.pending
        and steps.pending.split(" WHERE ")[1] == steps.convert.split(" WHERE ")[1]
    )
    assert steps.drop_text == [
        f"ALTER TABLE db.client_results DROP COLUMN {n}" for n in ("metrics", "computed")
    ]
    assert all(" ALIAS " in s for s in steps.add_aliases)


def test_optional_columns_left_out_of_the_insert() -> None:
    sql = ddl.insert_results_sql("db", ddl.OPTIONAL_RESULT_COLUMNS)
    assert "missing" not in sql and "text_names" not in sql and "metric_values" in sql
