"""The compacted topics (runs, scheduler lock) really are compacted on Apache Kafka: with small segments
and an eager cleaner, old manifests and pause records are removed, and every reader (read_manifests, the
run watcher behind `kcollect runs`, the exporter and doctor, and the scheduler lock) still sees the last
record per key."""

from __future__ import annotations

import time
import uuid
from collections import Counter

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from producers.scheduler.lock import ScheduleLock, pause_key, publish_pause
from schemas.models import RunManifest
from schemas.topics import RUNS, SCHEDULER_LOCK
from streams.kafka.admin import create_topics
from streams.kafka.producer import BatchProducer
from streams.runs.manifests import publish_manifest, read_manifests
from streams.runs.status import RunWatcher
from streams.settings.model import Settings, load_settings

pytestmark = pytest.mark.integration
RUN_IDS = [f"compact-{i}" for i in range(5)]
UPDATES = 12
SMALL_SEGMENTS = {
    "segment.ms": "100",
    "min.cleanable.dirty.ratio": "0.01",
    "min.compaction.lag.ms": "0",
    "delete.retention.ms": "100",
}


def _small_segments(settings: Settings, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap()})
    entries = [
        ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in SMALL_SEGMENTS.items()
    ]
    for future in admin.incremental_alter_configs(
        [ConfigResource("topic", topic, incremental_configs=entries)]
    ).values():
        future.result(30)


def _keys_on_topic(settings: Settings, topic: str) -> Counter[str]:
    """How many records each key has on the broker now (partition 0 from the start to its end)."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap(),
            "group.id": f"compaction-check-{uuid.uuid4().hex[:8]}",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    keys: Counter[str] = Counter()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error() is not None:
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    return keys
                continue
            keys[(msg.key() or b"").decode()] += 1
    finally:
        consumer.close()
    raise AssertionError(f"no end of {topic} within 30 s")


def _write_in_many_segments(write: object, rounds: int) -> None:
    for i in range(rounds):
        write(i)  # type: ignore[operator]
        time.sleep(0.15)  # past segment.ms: the next record rolls a new segment


def _wait_compacted(settings: Settings, topic: str, keys: list[str], timeout: float = 90) -> Counter[str]:
    """Wait until every key but the active segment's has a single record left."""
    deadline = time.monotonic() + timeout
    while True:
        counts = _keys_on_topic(settings, topic)
        if sum(counts[k] for k in keys) <= len(keys) + 2:  # the last segment is never cleaned
            return counts
        assert time.monotonic() < deadline, f"{topic} not compacted within {timeout} s: {counts}"
        time.sleep(1)


def test_old_manifests_are_removed_and_readers_see_the_last(
    apache_kafka: str, clickhouse_url: str, unique_name: str
) -> None:
    settings = load_settings(
        bootstrap_servers=apache_kafka, clickhouse_url=clickhouse_url, topic_prefix=f"{unique_name}."
    )
    create_topics(settings)
    topic = RUNS.name(settings.topic_prefix)
    _small_segments(settings, topic)
    producer = BatchProducer(settings)
    now = int(time.time() * 1000)

    def write(i: int) -> None:
        for run_id in RUN_IDS:
            status = "enqueued" if i == UPDATES - 1 else "enqueueing"
            manifest = RunManifest(
                run_id=run_id,
                source="range:0-9",
                status=status,
                total=100 + i,
                requested_at_ms=now,
                created_at_ms=now,
            )
            publish_manifest(settings, producer, manifest)

    _write_in_many_segments(write, UPDATES)
    roll = RunManifest(
        run_id="compact-roll",
        source="range:0-9",
        status="enqueued",
        total=1,
        requested_at_ms=now,
        created_at_ms=now,
    )
    _write_in_many_segments(lambda i: publish_manifest(settings, producer, roll), 3)  # later segments
    counts = _wait_compacted(settings, topic, RUN_IDS)
    assert all(counts[run_id] == 1 for run_id in RUN_IDS), counts  # old manifests removed

    manifests = read_manifests(settings)
    watcher = RunWatcher(settings)
    try:
        watcher.refresh()
        seen_by_watcher = dict(watcher.manifests)
    finally:
        watcher.close()
    for run_id in RUN_IDS:
        for seen in (manifests, seen_by_watcher):
            assert seen[run_id].total == 100 + UPDATES - 1 and seen[run_id].status == "enqueued"


def test_old_pause_records_are_removed_and_the_lock_sees_the_last(
    apache_kafka: str, unique_name: str
) -> None:
    settings = load_settings(
        bootstrap_servers=apache_kafka, topic_prefix=f"{unique_name}.", session_timeout_ms=3000
    )
    create_topics(settings)
    topic = SCHEDULER_LOCK.name(settings.topic_prefix)
    _small_segments(settings, topic)
    names = ["nightly", "hourly"]

    def write(i: int) -> None:
        for name in names:
            publish_pause(settings, name, paused=(i % 2 == 0) if name == "nightly" else (i % 2 == 1))

    _write_in_many_segments(write, 11)  # last round i=10: nightly paused, hourly resumed
    _write_in_many_segments(lambda i: publish_pause(settings, "roll", paused=True), 3)
    counts = _wait_compacted(settings, topic, [pause_key(n) for n in names])
    assert all(counts[pause_key(n)] == 1 for n in names), counts

    for name, paused in (("nightly", True), ("hourly", False)):
        lock = ScheduleLock(settings, name)
        try:
            deadline = time.monotonic() + 30
            while not lock.poll(0.2):
                assert time.monotonic() < deadline, f"{name}: never leader"
            assert lock.paused is paused
        finally:
            lock.close()
