"""Run manifests on the compacted runs topic: publish one, read them all (the last record per run wins).

The broker may not compact (Tansu keeps every record), so readers always fold to the last record per
key themselves. Reading stops at each partition's end as the fetch responses report it
(``enable.partition.eof``), which is exact on Tansu too, unlike its ListOffsets high watermark.
"""

from __future__ import annotations

import time
import uuid

from confluent_kafka import KafkaError, TopicPartition

from schemas.codec import CodecError, decode, encode
from schemas.models import RunManifest
from schemas.topics import RUNS
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
