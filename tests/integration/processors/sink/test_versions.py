"""Which row survives under FINAL, on the real ClickHouse: the version orders a later, better result of a
(run, client) above an earlier or worse one (attempt, then ok over partial, then the collection time),
whatever the order of the inserts; and an existing table's rows migrate to that version, idempotently."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from clickhouse_driver import Client

from processors.sink.insert import SinkStats, WindowWriter
from processors.sink.result_rows import row_of
from processors.sink.windowing import PartitionWindow, WindowLimits
from schemas.ddl import RESULTS_TABLE, result_version
from streams.clickhouse.client import connect, migrate
from streams.settings.model import ClickHouseAddress, parse_clickhouse_url
from tests.stack_fixtures import database_url

pytestmark = pytest.mark.integration

T0 = 1_763_900_000_000  # 2025-11-23
LIMITS = WindowLimits(1000, 10**9, 1.0)


@pytest.fixture
def address(clickhouse_url: str, unique_name: str) -> Iterator[ClickHouseAddress]:
    address = parse_clickhouse_url(database_url(clickhouse_url, unique_name))
    migrate(address)
    yield address


def result(client: str, attempt: int, status: str, collected_after_s: int) -> dict[str, Any]:
    metrics = {"cpu": 1.0, "mem": 2.0} if status == "ok" else {"cpu": 1.0}
    return {
        "v": 1,
        "run_id": "versions-1",
        "client_id": client,
        "requested_at_ms": T0,
        "attempt": attempt,
        "collected_at_ms": T0 + collected_after_s * 1000,
        "status": status,
        "metrics": metrics,
        "missing": [] if status == "ok" else ["mem"],
        "computed": {},
    }


def insert_alone(address: ClickHouseAddress, record: dict[str, Any], offset: int) -> None:
    """One insert (one part) per result: FINAL must choose between parts by version alone."""
    columns = [[value] for value in row_of(record)]
    window = PartitionWindow(("results", 0), offset, offset + 1, LIMITS, 0.0, columns, [offset], [None])
    window.positions = [0]
    writer = WindowWriter(address, SinkStats())
    try:
        assert writer.write(window) == []
    finally:
        writer.reset()


def survivors(client: Client, database: str) -> dict[str, tuple[int, str, int]]:
    rows = client.execute(
        f"SELECT client_id, attempt, status, toUInt32(collected_at) FROM {database}.{RESULTS_TABLE} FINAL"
    )
    return {str(r[0]): (int(r[1]), str(r[2]), int(r[3]) - T0 // 1000) for r in rows}


# client -> results in insert order; the winner is the index of the result that must survive
CASES: dict[str, tuple[list[tuple[int, str, int]], int]] = {
    "replay-full-after-partial": ([(0, "partial", 1), (0, "ok", 5)], 1),
    "full-inserted-before-partial": ([(0, "ok", 5), (0, "partial", 9)], 0),  # same attempt: ok wins
    "later-attempt-inserted-first": ([(1, "partial", 9), (0, "ok", 5)], 0),
    "later-collection-inserted-first": ([(0, "partial", 7), (0, "partial", 3)], 0),
}


def test_the_later_better_result_survives_under_final(address: ClickHouseAddress) -> None:
    offset = 0
    for client_id, (results, _) in CASES.items():
        for attempt, status, after in results:
            insert_alone(address, result(client_id, attempt, status, after), offset)
            offset += 1
    client = connect(address)
    try:
        found = survivors(client, address.database)
        client.execute(f"OPTIMIZE TABLE {address.database}.{RESULTS_TABLE} FINAL")
        merged = survivors(client, address.database)
    finally:
        client.disconnect()
    expected = {c: results[winner] for c, (results, winner) in CASES.items()}
    assert found == expected
    assert merged == expected, "background merges must keep the same row as FINAL"


def test_result_version_is_a_monotonic_order() -> None:
    ordered = [
        result_version(0, False, T0),
        result_version(0, False, T0 + 1),
        result_version(0, True, T0),
        result_version(0, True, T0 + 1),
        result_version(1, False, 0),
        result_version(1000, True, 253402300799999),
    ]
    assert ordered == sorted(ordered) and len(set(ordered)) == len(ordered)
    assert ordered[-1] < 2**64


def test_existing_rows_migrate_to_the_new_version_idempotently(address: ClickHouseAddress) -> None:
    """Rows written before this version format carry ``version = attempt``; after ``migrate`` (twice)
    every (run, client) keeps its best row under FINAL and a new row of an earlier attempt or a
    partial one does not replace it."""
    table = f"{address.database}.{RESULTS_TABLE}"
    client = connect(address)
    old = [
        ("r-old", "a", T0 // 1000, T0 // 1000 + 5, 2, "ok", '{"cpu":1.0}', [], "{}", 2),
        ("r-old", "a", T0 // 1000, T0 // 1000 + 1, 1, "partial", "{}", ["cpu"], "{}", 1),
        ("r-old", "b", T0 // 1000, T0 // 1000 + 1, 0, "partial", "{}", ["cpu"], "{}", 0),
    ]
    names = (
        "run_id, client_id, requested_at, collected_at, attempt, status, metrics, missing, computed, version"
    )
    try:
        client.execute(f"INSERT INTO {table} ({names}) VALUES", [tuple(r) for r in old], types_check=True)
        migrate(address)
        migrate(address)  # idempotent: nothing copied the second time
        raw = client.execute(f"SELECT client_id, attempt, version FROM {table} WHERE run_id = 'r-old'")
        final = client.execute(f"SELECT client_id, attempt, status FROM {table} FINAL WHERE run_id = 'r-old'")
    finally:
        client.disconnect()
    assert sorted(final) == [("a", 2, "ok"), ("b", 0, "partial")]
    migrated = [(c, a) for c, a, v in raw if v >= result_version(0, False, 0)]
    assert sorted(migrated) == [("a", 1), ("a", 2), ("b", 0)], raw  # each old row copied once
    # a replayed result of attempt 1 arriving after the migration does not replace attempt 2
    replay = result("a", 1, "ok", 30) | {"run_id": "r-old"}
    insert_alone(address, replay, 0)
    client = connect(address)
    try:
        final = client.execute(f"SELECT client_id, attempt FROM {table} FINAL WHERE run_id = 'r-old'")
    finally:
        client.disconnect()
    assert sorted(final) == [("a", 2), ("b", 0)]
