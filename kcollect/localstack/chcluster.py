"""A local ClickHouse cluster: one ZooKeeper and shards x replicas clickhouse-servers on loopback.

Every server is a plain process with its own folder (``folder/chcluster/s<shard>r<replica>/``) and
ports chosen before any starts (each config lists the whole cluster). A member stopped or killed can be
started again on the same folder and ports (``restart``); ``stop`` stops everything by PID, servers
first, ZooKeeper last.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from kcollect.localstack.chconfig import ClickHouseLayout, ClickHousePorts, ClusterMember
from kcollect.localstack.clickhouse import STARTUP_TIMEOUT, clickhouse_url, distinct_ports, start_server
from kcollect.localstack.process import stop_process
from kcollect.localstack.zookeeper import start_zookeeper
from streams.settings.stackfile import ProcessRecord

CLUSTER_NAME = "kcollect"


@dataclass
class ClusterServer:
    """One member: where it lives, its ports, its place in the cluster and (while running) its process."""

    member: ClusterMember
    layout: ClickHouseLayout
    ports: ClickHousePorts
    record: ProcessRecord | None = None

    @property
    def url(self) -> str:
        return clickhouse_url(self.ports.tcp)


@dataclass
class LocalCluster:
    """The processes of one local cluster, and how to stop and restart them."""

    name: str
    folder: Path
    zookeeper: ProcessRecord
    servers: list[ClusterServer] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The URL of the first server: any member answers for the Distributed tables and ON CLUSTER."""
        return self.servers[0].url

    def shard(self, number: int) -> list[ClusterServer]:
        """The replicas of shard ``number`` (1-based)."""
        return [s for s in self.servers if s.member.shard == number]

    def servers_by_shard(self) -> dict[int, list[ClusterServer]]:
        """Shard number -> its replicas, in shard order."""
        shards: dict[int, list[ClusterServer]] = {}
        for server in self.servers:
            shards.setdefault(server.member.shard, []).append(server)
        return shards

    def processes(self) -> list[ProcessRecord]:
        """ZooKeeper first, then the running servers (the order ``stack.json`` records them in)."""
        return [self.zookeeper, *(s.record for s in self.servers if s.record is not None)]

    def stop_server(self, server: ClusterServer) -> None:
        if server.record is not None:
            stop_process(server.record)
            server.record = None

    def restart(self, server: ClusterServer, timeout: float = STARTUP_TIMEOUT) -> None:
        """Start ``server`` again on its folder and ports (after a stop or a kill -9).

        A replica killed during an insert can hold parts ZooKeeper never recorded (the insert was cut
        off before its commit there, so it was never acknowledged and the sink sends it again); 18.16
        then refuses to load the table ("doesn't look like the set of parts in ZooKeeper"). The restart
        sets ClickHouse's ``flags/force_restore_data``, the recovery its docs prescribe: such parts are
        moved to ``detached/`` and the replica fetches what ZooKeeper lists from its twin."""
        if server.record is not None:
            stop_process(server.record)
        flags = server.layout.data_dir / "flags"
        flags.mkdir(parents=True, exist_ok=True)
        (flags / "force_restore_data").touch()
        server.record = start_server(server.layout, server.ports, server.member, timeout=timeout)

    def stop_zookeeper(self) -> None:
        stop_process(self.zookeeper)

    def restart_zookeeper(self, timeout: float = 60.0) -> None:
        stop_process(self.zookeeper)
        self.zookeeper = start_zookeeper(self.folder, self.zookeeper.port, timeout=timeout)

    def stop(self) -> None:
        """Stop every server, then ZooKeeper (each by its PID, only if it still is ours)."""
        for server in self.servers:
            with contextlib.suppress(Exception):
                self.stop_server(server)
        stop_process(self.zookeeper)


def plan_servers(
    folder: Path, name: str, shards: int, replicas: int, zookeeper_port: int, weights: tuple[int, ...] = ()
) -> list[ClusterServer]:
    """Folders, ports and places of every member (nothing started)."""
    taken: set[int] = {zookeeper_port}
    ports: list[ClickHousePorts] = []
    for _ in range(shards * replicas):
        chosen = distinct_ports(taken=frozenset(taken))
        taken.update((chosen.tcp, chosen.http, chosen.interserver))
        ports.append(chosen)
    topology = tuple(tuple(ports[s * replicas + r].tcp for r in range(replicas)) for s in range(shards))
    servers = []
    for index, chosen in enumerate(ports):
        shard, replica = index // replicas + 1, index % replicas + 1
        member = ClusterMember(name, topology, shard, replica, zookeeper_port, weights)
        home = folder / "chcluster" / member.replica_name
        layout = ClickHouseLayout(config_dir=home, data_dir=home / "data", log_dir=home / "logs")
        servers.append(ClusterServer(member, layout, chosen))
    return servers


def start_cluster(
    folder: Path,
    *,
    name: str = CLUSTER_NAME,
    shards: int = 2,
    replicas: int = 2,
    weights: tuple[int, ...] = (),
    timeout: float = STARTUP_TIMEOUT,
) -> LocalCluster:
    """Start ZooKeeper and ``shards x replicas`` servers (shard ``weights``, default all 1); on any
    failure stop what started and raise."""
    zookeeper = start_zookeeper(folder)
    cluster = LocalCluster(name, folder, zookeeper)
    try:
        cluster.servers = plan_servers(folder, name, shards, replicas, zookeeper.port, weights)
        for server in cluster.servers:
            cluster.restart(server, timeout)
    except BaseException:
        cluster.stop()
        raise
    return cluster
