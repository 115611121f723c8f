"""Drills on a ClickHouse cluster: a drill stack whose ClickHouse is the ``local_cluster`` fixture
(2 shards x 2 replicas and ZooKeeper), deployments migrated ``ON CLUSTER``, and the checks that only a
cluster has: every replica of a shard holds the same rows, and every row is on the shard that owns it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.deployment import Deployment, make_deployment
from kcollect.localstack.chcluster import ClusterServer, LocalCluster
from schemas.ddl import RESULTS_LOCAL_TABLE
from streams.clickhouse.client import connect
from streams.settings.model import parse_clickhouse_url
from tests.drills.kit import _retry
from tests.oracles import shard_of

SYNC_TIMEOUT = 120.0


@dataclass
class ClusterStack:
    """The session's broker (the suite's broker of record: these drills do not break it) and a cluster."""

    bootstrap: str
    folder: Path
    cluster: LocalCluster
    cleanup: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def deploy(self, name: str, **env: str) -> Deployment:
        folder = self.folder / name
        env = {"KCOLLECT_CLICKHOUSE_CLUSTER": self.cluster.name} | env
        d = make_deployment(self.bootstrap, self.cluster.url, name, folder, **env)
        self.cleanup.callback(d.stop_all, 10)
        return d

    def restart(self, server: ClusterServer) -> None:
        _retry(lambda: _restarted(self.cluster, server))


def _restarted(cluster: LocalCluster, server: ClusterServer) -> object:
    cluster.restart(server)
    assert server.record is not None
    return server.record


@contextlib.contextmanager
def cluster_stack(folder: Path, cluster: LocalCluster, bootstrap: str) -> Iterator[ClusterStack]:
    """Deployments on ``bootstrap`` and ``cluster``; their services are stopped when it ends."""
    stack = ClusterStack(bootstrap, folder, cluster)
    with stack.cleanup:
        yield stack


def local_rows(server: ClusterServer, database: str, run_id: str) -> list[str]:
    """Client ids of ``run_id`` in one replica's local table, raw (duplicates kept), sorted."""
    address = parse_clickhouse_url(server.url)
    client = connect(address, database="default")
    try:
        rows = client.execute(
            f"SELECT client_id FROM {database}.{RESULTS_LOCAL_TABLE} WHERE run_id = %(r)s", {"r": run_id}
        )
        return sorted(str(row[0]) for row in rows)
    finally:
        client.disconnect()


def sync_replicas(cluster: LocalCluster, database: str) -> None:
    """``SYSTEM SYNC REPLICA`` of every replicated table of ``database`` (the results, the run summary,
    the client runs) on every running server: each has fetched what its shard's others wrote."""
    for server in cluster.servers:
        if server.record is None:
            continue
        client = connect(
            parse_clickhouse_url(server.url), database="default", send_receive_timeout=SYNC_TIMEOUT
        )
        try:
            replicated = "SELECT table FROM system.replicas WHERE database = %(d)s"
            for (table,) in client.execute(replicated, {"d": database}):
                client.execute(f"SYSTEM SYNC REPLICA {database}.{table}")
        finally:
            client.disconnect()


def check_placement(cluster: LocalCluster, database: str, run_id: str, clients: int) -> None:
    """After a sync: both replicas of a shard hold the same rows, no raw duplicate on any of them (the
    replicas dropped every retried block), each row on the shard that owns its client, and together
    the shards hold every client once."""
    sync_replicas(cluster, database)
    weights = [1] * len(cluster.servers_by_shard())
    seen: list[str] = []
    for number, replicas in cluster.servers_by_shard().items():
        contents = [local_rows(r, database, run_id) for r in replicas]
        assert all(c == contents[0] for c in contents), f"shard {number}: replicas differ"
        rows = contents[0]
        assert len(rows) == len(set(rows)), f"shard {number}: {len(rows) - len(set(rows))} raw duplicate(s)"
        misplaced = [c for c in rows if shard_of(weights, c) != number - 1]
        assert not misplaced, f"shard {number} holds clients of another shard: {misplaced[:5]}"
        seen += rows
    assert len(seen) == clients == len(set(seen)), (len(seen), clients, len(set(seen)))


def wait_until(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if predicate():  # type: ignore[operator]
                return
        time.sleep(0.2)
    raise AssertionError(f"{what} not within {timeout} s")
