"""Run manifests on the compacted runs topic: publish one, read them all (the last record per run wins);
and a run's client ids as the requests topic holds them (``run_clients``: a scan of the whole topic).

The broker may not compact (Tansu keeps every record), so readers always fold to the last record per
key themselves. Reading stops at each partition's end as the fetch responses report it
(``enable.partition.eof``), which is exact on Tansu too, unlike its ListOffsets high watermark.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, TopicPartition

from schemas.codec import CodecError, decode, decode_requests, encode
from schemas.models import RunManifest
from schemas.topics import REQUESTS, RUNS
from streams.kafka.admin import require_topics
from streams.kafka.clients import make_consumer
from streams.kafka.producer import BatchProducer, DeliveryTracker
from streams.settings.model import Settings


class ManifestNotDeliveredError(RuntimeError):
    """The broker did not confirm a run manifest."""


def publish_manifest(settings: Settings, producer: BatchProducer, manifest: RunManifest) -> None:
    """Produce ``manifest`` keyed by run id and wait until the broker confirms it."""
    tracker = producer.produce_batch(
        RUNS.name(settings.topic_prefix), [(manifest.run_id, encode(manifest))], DeliveryTracker()
    )
    if not producer.wait(tracker, settings.broker_timeout_seconds) or tracker.failed:
        raise ManifestNotDeliveredError(
            f"run manifest for {manifest.run_id} was not confirmed: "
            f"{'; '.join(tracker.first_errors) or 'timed out'}"
        )


def read_manifests(settings: Settings, timeout: float | None = None) -> dict[str, RunManifest]:
    """Every run's latest manifest, by run id (records that do not decode are skipped)."""
    topic = RUNS.name(settings.topic_prefix)
    partitions = require_topics(settings, [topic])[topic]
    consumer = make_consumer(
        settings, f"kcollect-runs-reader-{uuid.uuid4().hex[:8]}", **{"enable.partition.eof": True}
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    manifests: dict[str, RunManifest] = {}
    at_end: set[int] = set()
    deadline = time.monotonic() + (timeout or settings.broker_timeout_seconds)
    try:
        while len(at_end) < partitions and time.monotonic() < deadline:
            for msg in consumer.consume(1000, 0.2):
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        at_end.add(int(msg.partition() or 0))
                    continue
                try:
                    manifest = decode(RunManifest, msg.value())
                except CodecError:
                    continue
                manifests[manifest.run_id] = manifest
    finally:
        consumer.close()
    return manifests


def read_manifest(settings: Settings, run_id: str) -> RunManifest | None:
    return read_manifests(settings).get(run_id)


def read_to_end(settings: Settings, topics: list[str], take: Callable[[Any], None], timeout: float) -> None:
    """Hand every record of ``topics`` to ``take``, from the beginning to each partition's end (assigned,
    no group); TimeoutError when that takes longer than ``timeout`` seconds."""
    counts = require_topics(settings, topics)
    reader = make_consumer(
        settings,
        f"kcollect-reader-{uuid.uuid4().hex[:8]}",
        **{"enable.partition.eof": True, "fetch.wait.max.ms": 10},
    )
    partitions = {(t, p) for t, n in counts.items() for p in range(n)}
    reader.assign([TopicPartition(t, p, 0) for t, p in sorted(partitions)])
    at_end: set[tuple[str, int]] = set()
    deadline = time.monotonic() + timeout
    try:
        while at_end < partitions:
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {', '.join(topics)} to the end within {timeout:g} s")
            for msg in reader.consume(10000, 0.2):
                where = (str(msg.topic()), int(msg.partition() or 0))
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        at_end.add(where)
                    continue
                at_end.discard(where)
                take(msg)
    finally:
        reader.close()


def run_clients(settings: Settings, run_id: str, timeout: float = 120.0) -> set[str]:
    """Client ids of every request of ``run_id`` on the requests topic (the whole topic is read)."""
    found: set[str] = set()
    batch: list[bytes | None] = []

    def flush() -> None:
        good, _ = decode_requests(batch)
        found.update(r["client_id"] for r in good if r["run_id"] == run_id)
        batch.clear()

    def take(msg: Any) -> None:
        batch.append(msg.value())
        if len(batch) >= 10000:
            flush()

    read_to_end(settings, [REQUESTS.name(settings.topic_prefix)], take, timeout)
    flush()
    return found
