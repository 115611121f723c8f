"""The SQL subsystem against the real ClickHouse: one query per batch, missing rows are missing values."""

from __future__ import annotations

import asyncio

import pytest
from clickhouse_driver import Client

from processors.processor.caller import SubsystemCaller
from processors.processor.config import SubsystemConfig
from processors.processor.subsystems.sql_query import SqlSubsystem
from streams.settings.model import parse_clickhouse_url
from tests.stack_fixtures import database_url

pytestmark = pytest.mark.integration


def test_sql_subsystem_fetches_a_batch_with_one_query(clickhouse_url: str, unique_name: str) -> None:
    address = parse_clickhouse_url(database_url(clickhouse_url, unique_name))
    admin = Client(host=address.host, port=address.port, user=address.user, password=address.password)
    admin.execute(f"CREATE DATABASE IF NOT EXISTS {address.database}")
    admin.execute(
        f"CREATE TABLE {address.database}.latest (client_id String, cpu Float64, mem Float64) ENGINE = Memory"
    )
    admin.execute(
        f"INSERT INTO {address.database}.latest (client_id, cpu, mem) VALUES",
        [("c1", 1.5, 10.0), ("c2", 2.5, 20.0)],
    )
    try:
        sub = SqlSubsystem(
            "fleet",
            ["cpu", "mem"],
            "SELECT client_id, cpu, mem FROM latest WHERE client_id IN %(client_ids)s",
            address,
            pool_size=2,
        )
        requests = [{"run_id": "r", "client_id": c} for c in ("c2", "c9", "c1")]
        config = SubsystemConfig(name="fleet", kind="sql", query=sub.query, metrics=("cpu", "mem"))
        columns = asyncio.run(SubsystemCaller(sub, config).call(requests))
        assert columns == {"cpu": [2.5, None, 1.5], "mem": [20.0, None, 10.0]}
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {address.database}")
        admin.disconnect()
