"""Every query of docs/queries.md runs on ClickHouse 18.16 against two runs stored by the sink's writer,
and answers with rows (a query that fails or finds nothing fails the test); a few answers are checked.
On a cluster of 2 shards x 2 replicas (through the Distributed tables) every query answers what the
single server answers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from clickhouse_driver import Client

from processors.sink.insert import SinkStats, WindowWriter
from processors.sink.windowing import PartitionWindow, WindowLimits
from streams.clickhouse.client import connect, migrate
from streams.settings.model import ClickHouseAddress, parse_clickhouse_url
from tests.drills.cluster_kit import local_rows, sync_replicas
from tests.integration.cookbook_kit import RUNS, cookbook_queries, records, rows
from tests.stack_fixtures import database_url

pytestmark = pytest.mark.integration


def store(address: ClickHouseAddress) -> None:
    table = rows()
    columns = [[row[name] for row in table] for name in table[0]]
    n = len(table)
    window = PartitionWindow(
        ("results", 0), 0, n, WindowLimits(10**6, 10**9, 1.0), 0.0, columns, list(range(n)), []
    )
    window.positions = list(range(n))
    writer = WindowWriter(address, SinkStats())
    try:
        assert writer.write(window) == []
    finally:
        writer.reset()


@pytest.fixture(scope="module")
def database(clickhouse_url: str) -> Iterator[tuple[Client, str]]:
    address = parse_clickhouse_url(database_url(clickhouse_url, "cookbook_18"))
    admin = connect(address, database="default")
    admin.execute(f"DROP DATABASE IF EXISTS {address.database}")
    migrate(address)
    store(address)
    client = connect(address)
    try:
        yield client, address.database
    finally:
        client.disconnect()
        admin.execute(f"DROP DATABASE IF EXISTS {address.database}")
        admin.disconnect()


@pytest.mark.parametrize("index", range(len(cookbook_queries("kcollect"))))
def test_cookbook_query_answers(database: tuple[Client, str], index: int) -> None:
    client, name = database
    sql = cookbook_queries(name)[index]
    assert client.execute(sql), sql


def test_cookbook_answers_are_right(database: tuple[Client, str]) -> None:
    client, name = database
    queries = cookbook_queries(name)
    summary = client.execute(queries[0])[0]
    run2 = [r for r in records()[:-10] if r["run_id"] == "nightly-2"]
    partial = sorted(r["client_id"] for r in run2 if r["status"] == "partial")
    assert summary[1:5] == (len(run2), len(run2) - len(partial), len(partial), 0)
    by_missing = next(q for q in queries if "ARRAY JOIN missing" in q)
    assert client.execute(by_missing) == [("mem", len(partial))]
    partial_rows = next(q for q in queries if "status = 'partial'" in q)
    assert [r[0] for r in client.execute(partial_rows)] == partial
    top = next(q for q in queries if "LIMIT 10" in q and "DESC, client_id" in q)
    expected = sorted(run2, key=lambda r: (-r["metrics"]["cpu"], r["client_id"]))[:10]
    assert [r[0] for r in client.execute(top)] == [r["client_id"] for r in expected]
    only_one = next(q for q in queries if "HAVING count() = 1" in q)
    assert client.execute(only_one) == [("c0000", ["nightly-1"]), ("c0120", ["nightly-2"])]


def _plain(value: Any) -> Any:
    """A value of an answer, comparable across servers: floats to 9 digits (a sum over two shards adds
    in another order), arrays as tuples."""
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, list | tuple):
        return tuple(_plain(v) for v in value)
    return value


def _answer(client: Client, sql: str) -> list[Any]:
    answer = [_plain(row) for row in client.execute(sql)]
    return answer if "ORDER BY" in sql else sorted(answer)


def test_cookbook_on_a_cluster_answers_as_one_server(
    database: tuple[Client, str], local_cluster: Any
) -> None:
    """The same rows (re-delivered copies included) stored on a 2 x 2 cluster by the sink's writer, each
    shard's part into its replicated table: every query of the page, through the Distributed tables and
    views, answers exactly what the single server answers (``FINAL`` collapses on the shard that owns
    the client, subqueries read every shard)."""
    client, name = database
    url = database_url(local_cluster.url, name)
    address = replace(parse_clickhouse_url(url), cluster=local_cluster.name)
    migrate(address)
    store(address)
    sync_replicas(local_cluster, name)
    for replicas in local_cluster.servers_by_shard().values():  # both shards hold clients of both runs
        assert all(local_rows(replicas[0], name, run) for run in RUNS)
    on_cluster = connect(address)
    try:
        for sql in cookbook_queries(name):
            assert _answer(on_cluster, sql) == _answer(client, sql), sql
    finally:
        on_cluster.disconnect()
