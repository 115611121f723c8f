"""The drills' 3-broker Apache Kafka cluster on loopback, and what its drills read from it.

Three KRaft nodes (each broker and controller) started by ``kcollect.localstack.kafka.start_kafka``
with unclean leader election off; every deployment on it creates its topics at replication factor 3
with ``min.insync.replicas=2`` (``KCOLLECT_TOPIC_REPLICATION_FACTOR`` / ``_MIN_INSYNC_REPLICAS``, checked
on the broker when the deployment is made), and kcollect's producers write with ``acks=all``
(``streams.settings.librdkafka.producer_config``): a write counts once two replicas have it, and one
broker down never stops a partition. The helpers read the cluster's metadata: the leader of a
partition, the broker leading the most partitions, the partitions under-replicated, and the wait
until every replica is back in sync after a broker returns.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ClusterMetadata

from bench.deployment import Deployment
from kcollect.localstack.kafka import KafkaCluster, cache_root, start_kafka
from streams.lag.probe import partition_lags
from streams.runs.checker import pipeline_groups
from tests.drills.kit import ClickHouse, deploy_on
from tests.kafka_broker import assert_topics_replicated

NODES = 3
REPLICATION_FACTOR = 3
MIN_INSYNC_REPLICAS = 2
REPLICATION_ENV = {
    "KCOLLECT_TOPIC_REPLICATION_FACTOR": str(REPLICATION_FACTOR),
    "KCOLLECT_TOPIC_MIN_INSYNC_REPLICAS": str(MIN_INSYNC_REPLICAS),
}
# The launcher sets unclean.leader.election.enable=false on every node; said again so the drills do not
# depend on a default.
BROKER_PROPERTIES = {"unclean.leader.election.enable": "false"}
SYNC_TIMEOUT = 180.0
START_TIMEOUT = 120.0


@dataclass
class ClusterDrillStack:
    """A 3-node Kafka cluster and a ClickHouse; ``cleanup`` stops the deployments' services."""

    cluster: KafkaCluster
    clickhouse: ClickHouse
    folder: Path
    cleanup: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    @property
    def bootstrap(self) -> str:
        return self.cluster.bootstrap_servers

    def deploy(self, name: str, **env: str) -> Deployment:
        """A deployment whose topics the broker shows at RF 3, min ISR 2, unclean election off."""
        d = deploy_on(
            self.cleanup, self.bootstrap, self.clickhouse, self.folder / name, **(REPLICATION_ENV | env)
        )
        assert_topics_replicated(d.settings, REPLICATION_FACTOR, MIN_INSYNC_REPLICAS)
        return d

    def metadata(self, timeout: float = 10.0) -> ClusterMetadata:
        """The cluster's metadata, asked of the nodes running now (a stopped node never answers)."""
        running = ",".join(self.cluster.nodes[i].bootstrap for i in sorted(self.cluster.records))
        admin = AdminClient({"bootstrap.servers": running or self.bootstrap, "log_level": 0})
        return admin.list_topics(timeout=timeout)

    def leader(self, topic: str, partition: int) -> int:
        """The node id leading ``topic[partition]`` (-1 while it has none, or no node answers)."""
        try:
            return int(self.metadata().topics[topic].partitions[partition].leader)
        except KafkaException:
            return -1

    def busiest_leader(self, d: Deployment) -> tuple[str, int, int]:
        """(topic, partition, node id leading it): the requests partition with the most requests left
        to process, or, once the processors have taken every request, the results partition with the
        most result batches left to store."""
        settings = d.settings
        for group, topic in pipeline_groups(settings).items():  # requests first, then results
            lags = partition_lags(settings, group, topic)
            busiest = max(lags, key=lambda lag: lag.lag)
            if busiest.lag > 0:
                return topic, busiest.partition, self.leader(topic, busiest.partition)
        raise AssertionError(f"no requests or results partition of {d.name} has work left")

    def most_leading(self, d: Deployment) -> int:
        """The node id leading the most partitions of ``d``'s topics."""
        leaders = Counter(
            p.leader
            for name, t in self.metadata().topics.items()
            if name.startswith(d.settings.topic_prefix)
            for p in t.partitions.values()
        )
        return leaders.most_common(1)[0][0]

    def under_replicated(self) -> list[str]:
        """Every partition (internal topics included) with fewer in-sync replicas than replicas, or
        without a leader."""
        return [
            f"{name}[{p.id}] isr={list(p.isrs)} replicas={list(p.replicas)} leader={p.leader}"
            for name, topic in self.metadata().topics.items()
            for p in topic.partitions.values()
            if len(p.isrs) < len(p.replicas) or p.leader < 0
        ]

    def wait_in_sync(self, timeout: float = SYNC_TIMEOUT) -> float:
        """Seconds until every node is listed and no partition is under-replicated."""
        start = time.monotonic()
        self.cluster.wait_all(timeout)
        behind: list[str] = []
        while time.monotonic() - start < timeout:
            with contextlib.suppress(Exception):
                behind = self.under_replicated()
                if not behind:
                    return time.monotonic() - start
            time.sleep(0.2)
        raise AssertionError(f"partitions still under-replicated after {timeout} s: {behind[:10]}")

    def wait_under_replicated(self, timeout: float = 60.0) -> list[str]:
        """The under-replicated partitions, once the metadata shows some (a node just went away)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                behind = self.under_replicated()
                if behind:
                    return behind
            time.sleep(0.2)
        raise AssertionError(f"no partition under-replicated within {timeout} s of a node going away")

    def index_of(self, node_id: int) -> int:
        (index,) = [node.index for node in self.cluster.nodes if node.node_id == node_id]
        return index


@contextlib.contextmanager
def kafka_cluster_stack(folder: Path, clickhouse: ClickHouse) -> Iterator[ClusterDrillStack]:
    """Start a 3-node cluster under ``folder``; stop the deployments' services, then every node."""
    cluster = start_kafka(
        folder, nodes=NODES, timeout=START_TIMEOUT, extra=BROKER_PROPERTIES, cache=cache_root()
    )
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(cluster.stop)
        stack = ClusterDrillStack(cluster, clickhouse, folder)
        cleanup.enter_context(stack.cleanup)
        stack.wait_in_sync()
        yield stack
