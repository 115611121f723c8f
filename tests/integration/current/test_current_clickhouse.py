"""kcollect's SQL on a current ClickHouse, in-process (chdb, the ``chdb`` extra; CI installs it in its
own step): the DDL at the server's version, the views, every query of docs/queries.md, the typed
migration, and the features kcollect turns on for new servers (LowCardinality names, insert
deduplication tokens with ``non_replicated_deduplication_window``). Skipped without chdb unless
``KCOLLECT_REQUIRE_CHDB=1`` (then a missing chdb fails)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from schemas.ddl import RESULTS_TABLE, database_ddl, typed_migration
from streams.clickhouse.client import ServerFeatures, insert_settings, parse_version
from tests.integration.cookbook_kit import cookbook_queries, records, rows

if os.environ.get("KCOLLECT_REQUIRE_CHDB") != "1":
    pytest.importorskip("chdb")
from chdb import session as chdb_session

pytestmark = pytest.mark.chdb
DB = "kcollect"


class Server:
    """One chdb session (one data folder per test session: chdb allows one per process)."""

    def __init__(self, path: str) -> None:
        self.session = chdb_session.Session(path)
        self.version = parse_version(self.rows("SELECT version()")[0][0])

    def execute(self, sql: str) -> None:
        self.session.query(sql)

    def rows(self, sql: str) -> list[list[Any]]:
        out = self.session.query(sql, "JSONCompact")
        data: list[list[Any]] = orjson.loads(out.bytes())["data"] if out.bytes() else []
        return data

    def insert(self, table: str, rows: list[dict[str, Any]], settings: str = "") -> None:
        body = b"\n".join(orjson.dumps(row) for row in rows).decode()
        self.session.query(f"INSERT INTO {table} {settings} FORMAT JSONEachRow\n{body}")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield Server(str(tmp_path_factory.mktemp("chdb")))


@pytest.fixture(scope="session")
def stored(server: Server) -> Server:
    for statement in database_ddl(DB, server.version):
        server.execute(statement)
    server.insert(f"{DB}.{RESULTS_TABLE}", rows())
    return server


def test_a_current_server(server: Server) -> None:
    assert server.version >= (24,), server.version
    features = ServerFeatures(server.version)
    assert features.dedup_token


def test_ddl_uses_low_cardinality_names_and_the_dedup_window(stored: Server) -> None:
    types = dict(
        (name, ctype)
        for name, ctype in stored.rows(
            f"SELECT name, type FROM system.columns WHERE database = '{DB}' AND table = '{RESULTS_TABLE}'"
        )
    )
    assert types["metric_names"] == "Array(LowCardinality(String))"
    assert types["metric_values"] == "Array(Float64)" and types["text_values"] == "Array(String)"
    create = stored.rows(
        f"SELECT create_table_query FROM system.tables WHERE database = '{DB}' AND name = '{RESULTS_TABLE}'"
    )
    assert "non_replicated_deduplication_window = 1000" in create[0][0]


def test_the_views_answer(stored: Server) -> None:
    for view in (
        "client_results_final",
        "result_values",
        "result_texts",
        "client_latest",
        "run_summary_final",
    ):
        assert stored.rows(f"SELECT count() FROM {DB}.{view}")[0][0] > 0, view
    run2 = [r for r in records()[:-10] if r["run_id"] == "nightly-2"]
    summary = stored.rows(
        f"SELECT clients, partial_clients FROM {DB}.run_summary_final WHERE run_id = 'nightly-2'"
    )
    assert summary == [[len(run2), sum(r["status"] == "partial" for r in run2)]]
    text = stored.rows(
        f"SELECT metrics FROM {DB}.client_results FINAL WHERE run_id = 'nightly-2' AND client_id = 'c0042'"
    )
    expected = next(r for r in run2 if r["client_id"] == "c0042")["metrics"]
    assert orjson.loads(text[0][0]) == expected


@pytest.mark.parametrize("index", range(len(cookbook_queries(DB))))
def test_cookbook_query_answers(stored: Server, index: int) -> None:
    sql = cookbook_queries(DB)[index]
    assert stored.rows(sql), sql


def test_insert_deduplication_tokens(stored: Server) -> None:
    """A retried insert with the same token is dropped by the server (the sink's settings). A plain
    MergeTree of the same columns: ReplacingMergeTree would also collapse keys within an insert
    (``optimize_on_insert``) and in background merges, which says nothing about the token."""
    table = f"{DB}.dedup_check"
    stored.execute(
        f"CREATE TABLE {table} AS {DB}.{RESULTS_TABLE} ENGINE = MergeTree ORDER BY (run_id, client_id) "
        "SETTINGS non_replicated_deduplication_window = 1000"
    )
    token = insert_settings(ServerFeatures(stored.version), "results:0:0-130:202512:0-129:130")
    settings = "SETTINGS " + ", ".join(f"{k} = '{v}'" for k, v in token.items())
    batch = rows()
    stored.insert(table, batch, settings)
    stored.insert(table, batch, settings)  # the retry of an insert whose acknowledgement was lost
    assert stored.rows(f"SELECT count() FROM {table}") == [[len(batch)]]
    other = settings.replace("0-129:130", "0-128:129")
    stored.insert(table, batch[:129], other)
    assert stored.rows(f"SELECT count() FROM {table}") == [[len(batch) + 129]]


def test_typed_migration_on_a_current_server(server: Server) -> None:
    """The JSON-text layout moved over by the same statements ``migrate`` runs on 18.16."""
    db = "legacy"
    server.execute(f"CREATE DATABASE IF NOT EXISTS {db}")
    server.execute(
        f"""CREATE TABLE {db}.{RESULTS_TABLE} (run_id String, client_id String, requested_at DateTime('UTC'),
        collected_at DateTime('UTC'), attempt UInt16, status String, metrics String, missing Array(String),
        computed String, version UInt64) ENGINE = ReplacingMergeTree(version)
        PARTITION BY toYYYYMM(requested_at) ORDER BY (run_id, client_id)"""
    )
    old = [
        {"run_id": "r", "client_id": f"c{i}", "requested_at": 1764547200, "collected_at": 1764547201,
         "attempt": 0, "status": "ok", "metrics": orjson.dumps({"cpu": i * 1.5, "mem": -2e20}).decode(),
         "missing": [], "computed": orjson.dumps({"mean": i / 3}).decode(), "version": 1}
        for i in range(50)
    ]  # fmt: skip
    server.insert(f"{db}.{RESULTS_TABLE}", old)
    steps = typed_migration(db, server.version)
    for statement in steps.add_columns:
        server.execute(statement)
    assert server.rows(steps.pending) == [[50]]
    server.execute(steps.convert + " SETTINGS mutations_sync = 1")
    assert server.rows(steps.pending) == [[0]]
    for statement in (*steps.drop_text, *steps.add_aliases):
        server.execute(statement)
    got = server.rows(
        f"SELECT client_id, metric_names, metric_values, computed_values, metrics FROM {db}.{RESULTS_TABLE}"
    )
    assert len(got) == 50
    for client_id, names, values, computed, text in got:
        i = int(client_id[1:])
        assert dict(zip(names, values, strict=True)) == {"cpu": i * 1.5, "mem": -2e20}
        assert computed == [pytest.approx(i / 3)]
        assert orjson.loads(text) == {"cpu": i * 1.5, "mem": -2e20}
