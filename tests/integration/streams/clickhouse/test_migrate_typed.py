"""``kcollect db migrate`` on a deployment of the JSON-text layout (``metrics`` / ``computed`` as String
columns of JSON text, the layout before typed results): every row kept, its values in the typed columns,
the text still readable (as ALIAS columns), the run summary and its readers unchanged, new rows of the
sink stored beside the old ones, the client history filled; a second migrate changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from clickhouse_driver import Client

from processors.sink.insert import SinkStats, WindowWriter
from processors.sink.result_rows import row_of
from processors.sink.windowing import PartitionWindow, WindowLimits
from schemas.ddl import result_version
from streams.clickhouse.client import connect, migrate
from streams.settings.model import ClickHouseAddress, parse_clickhouse_url
from tests.stack_fixtures import database_url

pytestmark = pytest.mark.integration

T0 = 1_763_900_000  # 2025-11-23, epoch seconds
RUN = "legacy-1"

# The JSON-text layout as `kcollect db migrate` created it before typed results (schemas/ddl.py then).
LEGACY_DDL = [
    """CREATE TABLE {db}.client_results (
    run_id String, client_id String, requested_at DateTime('UTC'), collected_at DateTime('UTC'),
    attempt UInt16, status String, metrics String, missing Array(String), computed String, version UInt64
) ENGINE = ReplacingMergeTree(version) PARTITION BY toYYYYMM(requested_at) ORDER BY (run_id, client_id)""",
    "CREATE VIEW {db}.client_results_final AS SELECT * FROM {db}.client_results FINAL",
    """CREATE TABLE {db}.run_summary (run_id String,
    clients AggregateFunction(uniqExact, UInt64),
    ok_clients AggregateFunction(uniqExactIf, UInt64, UInt8),
    partial_clients AggregateFunction(uniqExactIf, UInt64, UInt8),
    deliveries AggregateFunction(count),
    first_collected_at AggregateFunction(min, DateTime('UTC')),
    last_collected_at AggregateFunction(max, DateTime('UTC')),
    max_attempt AggregateFunction(max, UInt16)) ENGINE = AggregatingMergeTree() ORDER BY run_id""",
    """CREATE MATERIALIZED VIEW {db}.run_summary_mv TO {db}.run_summary AS SELECT run_id,
    uniqExactState(cityHash64(client_id)) AS clients,
    uniqExactIfState(cityHash64(client_id), status = 'ok') AS ok_clients,
    uniqExactIfState(cityHash64(client_id), status = 'partial') AS partial_clients,
    countState() AS deliveries, minState(collected_at) AS first_collected_at,
    maxState(collected_at) AS last_collected_at, maxState(attempt) AS max_attempt
    FROM {db}.client_results GROUP BY run_id""",
    """CREATE VIEW {db}.run_summary_final AS SELECT run_id, uniqExactMerge(clients) AS clients,
    uniqExactIfMerge(ok_clients) AS ok_clients, uniqExactIfMerge(partial_clients) AS partial_clients,
    countMerge(deliveries) AS deliveries, minMerge(first_collected_at) AS first_collected_at,
    maxMerge(last_collected_at) AS last_collected_at, maxMerge(max_attempt) AS max_attempt
    FROM {db}.run_summary GROUP BY run_id""",
]


def legacy_rows(count: int) -> list[tuple[Any, ...]]:
    rows = []
    for i in range(count):
        ok = i % 5 != 0
        metrics = {"cpu": i * 0.5, "mem": -1.25e20 if i == 3 else float(i), "disk": 7} if ok else {"cpu": 1.5}
        computed = {"mean": i / 3, "count": float(len(metrics))}
        version = result_version(0, ok, (T0 + 9) * 1000)
        rows.append(
            (RUN, f"c{i:03}", T0, T0 + 9, 0, "ok" if ok else "partial", orjson.dumps(metrics).decode(),
             [] if ok else ["mem", "disk"], orjson.dumps(computed).decode(), version)
        )  # fmt: skip
    return rows


@pytest.fixture
def legacy(clickhouse_url: str, unique_name: str) -> Iterator[tuple[ClickHouseAddress, Client]]:
    address = parse_clickhouse_url(database_url(clickhouse_url, unique_name))
    client = connect(address, database="default")
    client.execute(f"CREATE DATABASE {address.database}")
    for statement in LEGACY_DDL:
        client.execute(statement.format(db=address.database))
    names = (
        "run_id, client_id, requested_at, collected_at, attempt, status, metrics, missing, computed, version"
    )
    rows = legacy_rows(120)
    # two inserts: two parts, and a re-delivered copy of ten rows
    client.execute(f"INSERT INTO {address.database}.client_results ({names}) VALUES", rows)
    client.execute(f"INSERT INTO {address.database}.client_results ({names}) VALUES", rows[:10])
    try:
        yield address, client
    finally:
        client.disconnect()


def sink_insert(address: ClickHouseAddress, records: list[dict[str, Any]]) -> None:
    rows = [row_of(r) for r in records]
    columns = [list(column) for column in zip(*rows, strict=True)]
    limits = WindowLimits(1000, 10**9, 1.0)
    window = PartitionWindow(("results", 0), 0, len(rows), limits, 0.0, columns, list(range(len(rows))), [])
    window.positions = list(range(len(rows)))
    writer = WindowWriter(address, SinkStats())
    try:
        assert writer.write(window) == []
    finally:
        writer.reset()


def test_migrate_moves_the_json_text_layout_to_typed_columns(
    legacy: tuple[ClickHouseAddress, Client],
) -> None:
    address, client = legacy
    db = address.database
    before = client.execute(
        f"SELECT client_id, status, metrics, computed, missing FROM {db}.client_results FINAL"
    )
    summary_before = client.execute(f"SELECT clients, ok_clients, deliveries FROM {db}.run_summary_final")

    first = migrate(address)
    assert any("UPDATE" in s for s in first) and any("DROP COLUMN metrics" in s for s in first)

    typed = client.execute(
        f"SELECT client_id, metric_names, metric_values, computed_names, computed_values, metrics, computed "
        f"FROM {db}.client_results FINAL ORDER BY client_id"
    )
    assert len(typed) == len(before) == 120
    expected = {c: (orjson.loads(m), orjson.loads(k)) for c, _, m, k, _ in before}
    for client_id, names, values, cnames, cvalues, metrics_text, computed_text in typed:
        metrics, computed = expected[client_id]
        assert dict(zip(names, values, strict=True)) == metrics
        assert dict(zip(cnames, cvalues, strict=True)) == pytest.approx(computed)
        assert orjson.loads(metrics_text) == metrics  # readers of the text: the ALIAS column
        assert orjson.loads(computed_text) == pytest.approx(computed)
    raw = client.execute(f"SELECT count() FROM {db}.client_results")[0][0]
    assert raw == 130  # no row lost, none added (the re-delivered copies are still there until a merge)
    assert (
        client.execute(f"SELECT clients, ok_clients, deliveries FROM {db}.run_summary_final")
        == summary_before
    )
    history = client.execute(f"SELECT count() FROM {db}.client_runs FINAL WHERE run_id = %(r)s", {"r": RUN})
    assert history == [(120,)]

    second = migrate(address)
    assert not any(s.startswith("ALTER") or s.startswith("INSERT") for s in second), second
    assert client.execute(f"SELECT count() FROM {db}.client_results")[0][0] == 130

    new = {
        "v": 1, "run_id": "typed-2", "client_id": "c000", "requested_at_ms": (T0 + 100) * 1000,
        "collected_at_ms": (T0 + 101) * 1000, "status": "ok", "metrics": {"cpu": 2.5, "os": "linux"},
        "missing": [], "computed": {"mean": 2.5},
    }  # fmt: skip
    sink_insert(address, [new])
    history = client.execute(
        f"SELECT run_id FROM {db}.client_runs FINAL WHERE client_id = 'c000' ORDER BY requested_at"
    )
    assert history == [(RUN,), ("typed-2",)]
    latest = client.execute(f"SELECT run_id, status FROM {db}.client_latest WHERE client_id = 'c000'")
    assert latest == [("typed-2", "ok")]
    text = client.execute(f"SELECT metrics FROM {db}.client_results FINAL WHERE run_id = 'typed-2'")[0][0]
    assert orjson.loads(text) == {"cpu": 2.5, "os": "linux"}
