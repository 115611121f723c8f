"""``kcollect.localstack.kafka`` against real Apache Kafka processes: one node, and a 3-node cluster."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from kcollect.localstack import kafka
from schemas.topics import ALL_TOPICS
from streams.kafka.admin import create_topics
from streams.settings.model import load_settings
from streams.settings.stackfile import pid_alive
from tests.kafka_broker import assert_topics_replicated

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", autouse=True)
def _tools() -> None:
    if kafka.missing_tools():
        pytest.skip(f"Apache Kafka needs {', '.join(kafka.missing_tools())}")


def _produce(bootstrap: str, topic: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    failures: list[str] = []
    for i in range(count):
        producer.produce(
            topic, key=str(i).encode(), value=b"v", on_delivery=lambda e, _m: e and failures.append(str(e))
        )
    assert producer.flush(30) == 0
    assert failures == []


def _consume(bootstrap: str, topic: str, count: int) -> int:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"g-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 1000,  # below Kafka's default minimum: the launcher lowers it
            "heartbeat.interval.ms": 300,
        }
    )
    consumer.subscribe([topic])
    seen = 0
    try:
        for _ in range(300):
            message = consumer.poll(0.1)
            if message is not None and message.error() is None:
                seen += 1
            if seen == count:
                break
    finally:
        consumer.close()
    return seen


def _create(bootstrap: str, topic: str, partitions: int, replicas: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, partitions, replicas)]).values():
        future.result(30)


@pytest.fixture
def single(tmp_path: Path) -> Iterator[kafka.KafkaCluster]:
    cluster = kafka.start_kafka(tmp_path, cache=kafka.cache_root())
    yield cluster
    cluster.stop()


def test_one_node_serves_topics_and_groups_and_stops_by_pid(single: kafka.KafkaCluster) -> None:
    (record,) = single.running_records()
    assert record.name == "kafka" and pid_alive(record.pid)
    assert kafka.broker_ids(single.bootstrap_servers, 5.0) == {1}
    _create(single.bootstrap_servers, "t", 2, 1)
    _produce(single.bootstrap_servers, "t", 100)
    assert _consume(single.bootstrap_servers, "t", 100) == 100
    assert (single.nodes[0].server_log).read_text().count("Kafka Server started") == 1

    assert single.stop() == ["kafka"]
    assert not pid_alive(record.pid)
    assert single.stop() == []


def test_formatted_data_survives_a_restart(tmp_path: Path) -> None:
    first = kafka.start_kafka(tmp_path, cache=kafka.cache_root())
    try:
        _create(first.bootstrap_servers, "kept", 1, 1)
        _produce(first.bootstrap_servers, "kept", 10)
    finally:
        first.stop()
    second = kafka.start_kafka(tmp_path, cache=kafka.cache_root())
    try:
        assert second.cluster_id == first.cluster_id
        assert _consume(second.bootstrap_servers, "kept", 10) == 10
    finally:
        second.stop()


def test_three_nodes_keep_serving_with_one_node_killed(tmp_path: Path) -> None:
    cluster = kafka.start_kafka(tmp_path, nodes=3, cache=kafka.cache_root())
    try:
        assert [r.name for r in cluster.running_records()] == ["kafka-1", "kafka-2", "kafka-3"]
        assert kafka.broker_ids(cluster.bootstrap_servers, 5.0) == {1, 2, 3}
        replicated = load_settings(
            bootstrap_servers=cluster.bootstrap_servers,
            topic_prefix="rf3.",
            topic_replication_factor=3,
            topic_min_insync_replicas=2,
        )
        assert len(create_topics(replicated)) == len(ALL_TOPICS)
        assert_topics_replicated(replicated, 3, 2)
        _create(cluster.bootstrap_servers, "r3", 3, 3)
        _produce(cluster.bootstrap_servers, "r3", 50)

        killed = cluster.records[1].pid
        assert cluster.kill_node(1)
        assert not pid_alive(killed)
        _produce(cluster.bootstrap_servers, "r3", 50)  # acks=all with min ISR 2 of the 2 left

        cluster.start_node(1)
        cluster.wait_all(60)
        assert cluster.stop_node(2)
        assert _consume(cluster.bootstrap_servers, "r3", 100) == 100
        cluster.start_node(2)
        assert kafka.broker_ids(cluster.bootstrap_servers, 5.0) == {1, 2, 3}
    finally:
        stopped = cluster.stop()
    assert sorted(stopped) == ["kafka-1", "kafka-2", "kafka-3"]
