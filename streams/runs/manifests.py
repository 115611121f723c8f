"""Run manifests on the compacted runs topic: publish one, read them all (the last record per run wins);
and a run's client ids as the requests topic holds them (``run_clients``: a scan of the whole topic).

The broker may not compact (Tansu keeps every record), so readers always fold to the last record per
key themselves. Reading stops at each partition's end as the fetch responses report it
(``enable.partition.eof``), which is exact on Tansu too, unlike its ListOffsets high watermark.
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import Message

from schemas.codec import CodecError, decode, decode_requests, encode
from schemas.models import RunManifest
from schemas.topics import REQUESTS, RUNS
from streams.kafka.producer import BatchProducer, DeliveryTracker
from streams.kafka.tail import read_topics
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
    manifests: dict[str, RunManifest] = {}

    def take(msg: Message) -> None:
        try:
            manifest = decode(RunManifest, msg.value())
        except CodecError:
            return
        manifests[manifest.run_id] = manifest

    read_topics(
        settings, [RUNS.name(settings.topic_prefix)], take, timeout or settings.broker_timeout_seconds, 1000
    )
    return manifests


def read_manifest(settings: Settings, run_id: str) -> RunManifest | None:
    return read_manifests(settings).get(run_id)


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

    read_topics(settings, [REQUESTS.name(settings.topic_prefix)], take, timeout)
    flush()
    return found
