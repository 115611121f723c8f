"""The local cluster's configs: each server's ZooKeeper, macros, remote_servers and distributed_ddl."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from kcollect.localstack.chcluster import plan_servers
from kcollect.localstack.chconfig import ClickHouseLayout, ClickHousePorts, ClusterMember, render_config
from kcollect.localstack.zookeeper import zoo_cfg

TEMPLATE = ET.fromstring(
    "<yandex><remote_servers incl='x'><old/></remote_servers><zookeeper/><macros/>"
    "<tcp_port>9000</tcp_port></yandex>"
)


def _render(member: ClusterMember | None) -> ET.Element:
    layout = ClickHouseLayout(Path("/c"), Path("/c/data"), Path("/c/logs"))
    return render_config(TEMPLATE, layout, ClickHousePorts(1, 2, 3), member=member)


def test_single_server_drops_cluster_sections() -> None:
    root = _render(None)
    assert root.find("remote_servers") is None and root.find("zookeeper") is None


def test_cluster_member_sections() -> None:
    member = ClusterMember("kc", ((10, 11), (20, 21)), 2, 1, 2181, (1, 3))
    root = _render(member)
    assert root.findtext("zookeeper/node/port") == "2181"
    assert root.findtext("macros/shard") == "2" and root.findtext("macros/replica") == "s2r1"
    shards = root.findall("remote_servers/kc/shard")
    assert [s.findtext("weight") for s in shards] == ["1", "3"]
    assert all(s.findtext("internal_replication") == "true" for s in shards)
    assert [r.findtext("port") for r in shards[1].findall("replica")] == ["20", "21"]
    assert root.find("remote_servers/old") is None  # the template's clusters are gone
    assert root.findtext("distributed_ddl/path")


def test_plan_servers_distinct_ports_and_places(tmp_path: Path) -> None:
    servers = plan_servers(tmp_path, "kc", 2, 2, 2181)
    ports = [p for s in servers for p in (s.ports.tcp, s.ports.http, s.ports.interserver)]
    assert len(set(ports)) == len(ports) and 2181 not in ports
    assert [(s.member.shard, s.member.replica) for s in servers] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert len({s.layout.data_dir for s in servers}) == 4
    assert servers[0].member.shards == servers[3].member.shards


def test_zoo_cfg_loopback_and_srvr() -> None:
    text = zoo_cfg(Path("/z"), 2181)
    assert "clientPortAddress=127.0.0.1" in text and "admin.enableServer=false" in text
    assert "srvr" in text.split("4lw.commands.whitelist=")[1]
