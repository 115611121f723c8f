"""Helpers for the lag, exporter and lag-gate integration tests: topics, produced records whose end
offsets come from delivery reports (exact on every broker), and commits for a group without joining."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from streams.lag.collector import LagCollector, LagMonitor, Snapshot
from streams.settings.model import Settings, load_settings

BATCHED = {"linger.ms": 1000, "batch.num.messages": 10000, "batch.size": 4 * 1024 * 1024}


def lag_settings(bootstrap: str, prefix: str, **extra: object) -> Settings:
    return load_settings(bootstrap_servers=bootstrap, topic_prefix=prefix, session_timeout_ms=2000, **extra)


def make_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(name, partitions, replication_factor=-1)]).values():
        future.result(30)


def produce(
    bootstrap: str,
    topic: str,
    counts: dict[int, int],
    *,
    timestamp_ms: int | None = None,
    batched: bool = False,
) -> dict[int, int]:
    """Produce ``counts[p]`` records to each partition; returns partition -> end offset (delivery reports)."""
    config: dict[str, object] = {"bootstrap.servers": bootstrap, "enable.idempotence": True}
    config.update(BATCHED if batched else {"linger.ms": 5})
    producer = Producer(config)
    ends: dict[int, int] = {}

    def delivered(err: object, msg: object) -> None:
        assert err is None, err
        p, o = msg.partition(), msg.offset()  # type: ignore[attr-defined]
        ends[p] = max(ends.get(p, 0), o + 1)

    for partition, n in counts.items():
        for i in range(n):
            value, key = f"v{i}".encode(), f"k{i}"
            if timestamp_ms is None:
                producer.produce(topic, value, key, partition, on_delivery=delivered)
            else:
                producer.produce(topic, value, key, partition, on_delivery=delivered, timestamp=timestamp_ms)
            if i % 50000 == 0:
                producer.poll(0)
    assert producer.flush(60) == 0
    return ends


def commit(bootstrap: str, group: str, offsets: dict[tuple[str, int], int]) -> None:
    """Commit ``offsets`` for ``group`` without joining it (the group is left empty)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        consumer.commit(
            offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=False
        )
    finally:
        consumer.close()


def sample_lag(settings: Settings, samples: int = 3, interval: float = 1.0) -> Snapshot:
    """A one-shot measurement: ``samples`` collections ``interval`` seconds apart; the last, with statuses."""
    monitor = LagMonitor(LagCollector(settings), window=max(samples, 1))
    try:
        snapshot = monitor.sample()
        for _ in range(samples - 1):
            time.sleep(max(0.0, interval - snapshot.seconds))
            snapshot = monitor.sample()
        return snapshot
    finally:
        monitor.close()
