"""The run summary DDL: an AggregatingMergeTree fed by a materialized view TO it, read through a -Merge
view; only duplicate-proof aggregates; the same on 18.16 and a current server."""

from __future__ import annotations

from schemas import ddl


def test_run_summary_statements() -> None:
    statements = ddl.database_ddl("db", (18, 16, 1))
    table, mv, view = statements[3:6]
    assert table.startswith("CREATE TABLE IF NOT EXISTS db.run_summary (")
    assert "ENGINE = AggregatingMergeTree()" in table and "ORDER BY run_id" in table
    assert mv.startswith("CREATE MATERIALIZED VIEW IF NOT EXISTS db.run_summary_mv\nTO db.run_summary")
    assert "FROM db.client_results" in mv and "GROUP BY run_id" in mv
    assert view.startswith("CREATE VIEW IF NOT EXISTS db.run_summary_final AS")
    for name, ctype, state, merge in ddl.RUN_SUMMARY_COLUMNS:
        assert f"{name} {ctype}" in table
        assert f"{state} AS {name}" in mv
        assert f"{merge}({name}) AS {name}" in view
        # duplicate-proof: distinct counts, min/max; count() only as the visible re-delivery counter
        assert state.split("(")[0] in {
            "uniqExactState",
            "uniqExactIfState",
            "minState",
            "maxState",
            "countState",
        }


def test_same_schema_on_both_servers_apart_from_dedup() -> None:
    old = ddl.database_ddl("db", (18, 16, 1))
    new = ddl.database_ddl("db", (24, 3))
    assert old[2:] == new[2:-1]
    assert "client_results_final" in old[2] and "FINAL" in old[2]
