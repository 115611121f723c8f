"""Reading topics to their end: every record once, across partitions and topics; a kept end set makes
later calls read only what is new; a topic that does not exist is named."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Message, TopicPartition

from schemas.topics import REQUESTS, RUNS
from streams.kafka.admin import TopicMissingError, create_topics
from streams.kafka.clients import make_consumer
from streams.kafka.producer import BatchProducer, DeliveryTracker
from streams.kafka.tail import read_to_end, read_topics
from streams.settings.model import load_settings

pytestmark = pytest.mark.integration


def _produce(producer: BatchProducer, topic: str, keys: range) -> None:
    tracker = producer.produce_batch(topic, [(f"c{k}", f"v{k}".encode()) for k in keys], DeliveryTracker())
    assert producer.wait(tracker, 30.0) and not tracker.failed


def test_reads_every_record_once_and_then_only_the_new_ones(kafka_bootstrap: str, unique_name: str) -> None:
    settings = load_settings(bootstrap_servers=kafka_bootstrap, topic_prefix=f"{unique_name}.")
    create_topics(settings)
    requests, runs = REQUESTS.name(settings.topic_prefix), RUNS.name(settings.topic_prefix)
    producer = BatchProducer(settings)
    _produce(producer, requests, range(500))
    _produce(producer, runs, range(7))

    seen: list[tuple[str, bytes]] = []

    def take(msg: Message) -> None:
        seen.append((str(msg.topic()), bytes(msg.value() or b"")))

    read_topics(settings, [requests, runs], take, timeout=30.0)
    assert sorted(seen) == sorted([(requests, f"v{k}".encode()) for k in range(500)] + [
        (runs, f"v{k}".encode()) for k in range(7)
    ])  # fmt: skip

    consumer = make_consumer(settings, f"{unique_name}-tail", **{"enable.partition.eof": True})
    counts = {p for p in consumer.list_topics(requests, timeout=10).topics[requests].partitions}
    partitions = {(requests, p) for p in counts}
    consumer.assign([TopicPartition(requests, p, 0) for p in counts])
    at_end: set[tuple[str, int]] = set()
    try:
        seen.clear()
        assert read_to_end(consumer, partitions, at_end, take, max_wait=30.0)
        assert len(seen) == 500
        seen.clear()
        _produce(producer, requests, range(500, 520))
        deadline = time.monotonic() + 30.0  # the end set is the last one seen: call until the new arrive
        while len(seen) < 20 and time.monotonic() < deadline:
            read_to_end(consumer, partitions, at_end, take, max_wait=1.0)
        assert sorted(seen) == sorted((requests, f"v{k}".encode()) for k in range(500, 520))
    finally:
        consumer.close()


def test_a_missing_topic_is_named(kafka_bootstrap: str, unique_name: str) -> None:
    settings = load_settings(bootstrap_servers=kafka_bootstrap, topic_prefix=f"{unique_name}.")
    with pytest.raises(TopicMissingError, match=f"{unique_name}.nothing"):
        read_topics(settings, [f"{unique_name}.nothing"], lambda msg: None, timeout=5.0)
