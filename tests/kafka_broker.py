"""A real Apache Kafka broker for the tests of what only it does (topic limits, owners, static membership,
KIP-848, partition growth, compaction), and a Tansu broker for the tests of what Tansu refuses.

``apache_kafka`` (session) is ``KCOLLECT_TEST_BOOTSTRAP_SERVERS`` when that names an Apache Kafka
broker, else one KRaft node started by ``kcollect.localstack.kafka`` in a pytest folder (stopped by PID
at the end); the tests are skipped when neither is possible (no ``java`` / ``mvn``). The local node
runs its log cleaner every half second so that compaction shows within a test.

``tansu_broker`` (session) is a Tansu broker started in a pytest folder (0.02 s), whatever the session's
broker is, so the Tansu paths are tested on every run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from schemas.topics import ALL_TOPICS
from streams.settings.librdkafka import broker_is_tansu
from streams.settings.model import Settings, load_settings

BROKER_EXTRA = {
    "log.cleaner.backoff.ms": "500",
    "log.segment.delete.delay.ms": "1000",
    # KIP-848 groups: the broker owns the session (default 45 s); short here so a crash shows in a test
    "group.consumer.session.timeout.ms": "6000",
    "group.consumer.heartbeat.interval.ms": "500",
}


@pytest.fixture(scope="session")
def apache_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("KCOLLECT_TEST_BOOTSTRAP_SERVERS")
    if given and not broker_is_tansu(load_settings(bootstrap_servers=given)):
        yield given
        return
    from kcollect.localstack import kafka

    if kafka.missing_tools():
        pytest.skip(f"Apache Kafka needs {', '.join(kafka.missing_tools())}")
    cluster = kafka.start_kafka(
        tmp_path_factory.mktemp("apache-kafka"), cache=kafka.cache_root(), extra=BROKER_EXTRA
    )
    try:
        yield cluster.bootstrap_servers
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def tansu_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from kcollect.localstack.brokers import start_local_broker

    broker = start_local_broker("tansu", tmp_path_factory.mktemp("tansu"))
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()


def assert_topics_replicated(settings: Settings, replicas: int, min_isr: int) -> None:
    """Every declared topic of ``settings``' prefix has ``replicas`` replicas per partition,
    ``min.insync.replicas`` ``min_isr`` and unclean leader election off, as the broker reports them."""
    names = [spec.name(settings.topic_prefix) for spec in ALL_TOPICS]
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap(), "log_level": 0})
    topics = admin.list_topics(timeout=30).topics
    for name in names:
        counts = {len(p.replicas) for p in topics[name].partitions.values()}
        assert counts == {replicas}, f"{name}: replicas per partition {counts}"
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in names]
    for resource, future in admin.describe_configs(resources, request_timeout=30).items():
        config = future.result(timeout=30)
        assert config["min.insync.replicas"].value == str(min_isr), resource.name
        assert config["unclean.leader.election.enable"].value == "false", resource.name
