"""The sink's client -> shard map agrees with the server's: rows inserted through the Distributed table
(synchronously) land on exactly the shards ``ShardMap`` picks, with unequal weights (1 and 2). ``db
migrate`` ON CLUSTER runs twice, and refuses a cluster holding rows of the older version format."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from kcollect.localstack.chcluster import start_cluster
from kcollect.localstack.errors import StackError
from kcollect.localstack.zookeeper import find_zookeeper
from schemas.ddl import RESULTS_LOCAL_TABLE
from streams.clickhouse.client import OldVersionFormatError, connect, migrate
from streams.clickhouse.cluster import ShardMap, read_shards
from streams.settings.model import parse_clickhouse_url

pytestmark = pytest.mark.integration


def test_distributed_routing_matches_shard_map(tmp_path: Path) -> None:
    try:
        find_zookeeper()
    except StackError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(str(exc))
    cluster = start_cluster(tmp_path, shards=2, replicas=1, weights=(1, 2))
    try:
        url = cluster.url.replace("/kcollect", "/routing")
        address = dataclasses.replace(parse_clickhouse_url(url), cluster=cluster.name)
        migrate(address)
        migrate(address)  # idempotent ON CLUSTER
        client = connect(address)
        shards = read_shards(client, address)
        assert [s.weight for s in shards] == [1, 2]
        client.execute(
            "INSERT INTO client_results (run_id, client_id, requested_at, collected_at, attempt, status, "
            "version) SELECT 'r', concat('c-', toString(number)), now(), now(), 0, 'ok', 0 "
            "FROM numbers(3000)",
            settings={"insert_distributed_sync": 1},
        )
        ids = [f"c-{i}" for i in range(3000)]
        expected = ShardMap([1, 2]).split(ids)
        for index, server in enumerate(cluster.servers):
            local = connect(parse_clickhouse_url(server.url), database="routing")
            try:
                got = sorted(r[0] for r in local.execute(f"SELECT client_id FROM {RESULTS_LOCAL_TABLE}"))
            finally:
                local.disconnect()
            assert got == sorted(ids[i] for i in expected[index])
        assert 1800 < len(expected[1]) < 2200  # weight 2 of 3
        client.disconnect()
        # the rows above carry version 0, the older format: a cluster is not migrated in place
        with pytest.raises(OldVersionFormatError, match="single server"):
            migrate(address)
    finally:
        cluster.stop()
