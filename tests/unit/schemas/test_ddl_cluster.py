"""The cluster DDL: replicated local tables, Distributed tables under the readers' names, ON CLUSTER."""

from __future__ import annotations

from schemas import ddl


def test_single_server_ddl_has_no_cluster_parts() -> None:
    statements = "\n".join(ddl.database_ddl("db", (18, 16, 1)))
    assert (
        "ON CLUSTER" not in statements and "Replicated" not in statements and "Distributed" not in statements
    )
    assert ddl.insert_table(None) == ddl.RESULTS_TABLE


def test_cluster_ddl() -> None:
    statements = ddl.database_ddl("db", (18, 16, 1), "c1")
    assert all(" ON CLUSTER c1" in s for s in statements)
    text = "\n".join(statements)
    assert (
        "ReplicatedReplacingMergeTree("
        "'/clickhouse/tables/{shard}/db/client_results_local', '{replica}', version)" in text
    )
    assert (
        "ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/db/run_summary_local', '{replica}')"
        in text
    )
    assert f"Distributed(c1, db, client_results_local, {ddl.SHARD_KEY})" in text
    assert "Distributed(c1, db, run_summary_local)" in text
    mv = next(s for s in statements if "MATERIALIZED VIEW" in s)
    assert "TO db.run_summary_local" in mv and "FROM db.client_results_local" in mv
    final = next(s for s in statements if ddl.RESULTS_FINAL_VIEW in s)
    assert "FROM db.client_results FINAL" in final  # the Distributed table
    assert ddl.insert_table("c1") == ddl.RESULTS_LOCAL_TABLE
    assert "INSERT INTO db.client_results_local (" in ddl.insert_results_sql(
        "db", table=ddl.insert_table("c1")
    )


def test_each_table_created_before_what_reads_it() -> None:
    statements = ddl.database_ddl("db", (24, 3), "c1")
    order = [
        next(i for i, s in enumerate(statements) if f"EXISTS db.{name} " in s)
        for name in (
            ddl.RESULTS_LOCAL_TABLE,
            ddl.RESULTS_TABLE,
            ddl.RESULTS_FINAL_VIEW,
            ddl.RUN_SUMMARY_LOCAL,
            ddl.RUN_SUMMARY_TABLE,
            ddl.RUN_SUMMARY_MV,
            ddl.RUN_SUMMARY_VIEW,
        )
    ]
    assert order == sorted(order)
    assert not any("non_replicated_deduplication_window" in s for s in statements)  # replicated dedup
