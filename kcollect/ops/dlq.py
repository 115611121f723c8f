"""Read and replay the requests dead-letter topic (`kcollect dlq inspect | replay`).

``read_dlq`` reads the whole topic from the beginning with a throwaway consumer (no group offsets
are committed) until it has been idle for ``idle_seconds``. ``summarize`` counts by stage, error class
and reason and keeps a few samples. ``replay`` re-enqueues the chosen records onto the requests topic:
a request that decodes as a JSON object gets ``attempt`` 0 (and no deadline with ``clear_deadline``);
truncated originals are skipped, since their bytes are incomplete.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from streams.kafka.clients import make_consumer
from streams.kafka.dead_letter import header_map
from streams.kafka.producer import BatchProducer, DeliveryTracker, Headers
from streams.settings.model import Settings


@dataclass(frozen=True)
class DlqRecord:
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]

    def matches(
        self, stage: str | None, error_class: str | None, reason: str | None, run_id: str | None
    ) -> bool:
        wanted = {"stage": stage, "error_class": error_class, "reason": reason, "run_id": run_id}
        return all(value is None or self.headers.get(key) == value for key, value in wanted.items())


def read_dlq(
    settings: Settings, topic: str, idle_seconds: float = 2.0, limit: int = 10_000_000
) -> list[DlqRecord]:
    consumer = make_consumer(settings, f"kcollect-dlq-tools-{time.time_ns()}")
    try:
        metadata = consumer.list_topics(topic, timeout=settings.broker_timeout_seconds).topics[topic]
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in metadata.partitions])
        out: list[DlqRecord] = []
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < idle_seconds and len(out) < limit:
            batch = [msg for msg in consumer.consume(1000, 0.2) if msg.error() is None]
            if batch:
                idle_since = time.monotonic()
            out.extend(
                DlqRecord(
                    int(msg.partition() or 0),
                    int(msg.offset() or 0),
                    msg.key(),
                    msg.value() or b"",
                    header_map(msg.headers()),  # type: ignore[arg-type]
                )
                for msg in batch
            )
        return out[:limit]
    finally:
        consumer.close()


def summarize(records: list[DlqRecord], samples: int = 3) -> dict[str, Any]:
    by_stage = Counter(r.headers.get("stage", "?") for r in records)
    by_class = Counter(r.headers.get("error_class", "?") for r in records)
    by_reason = Counter(r.headers.get("reason", "?") for r in records)
    kept: list[dict[str, Any]] = []
    seen: Counter[tuple[str, str]] = Counter()
    for r in records:
        kind = (r.headers.get("stage", "?"), r.headers.get("error_class", "?"))
        if seen[kind] < samples:
            seen[kind] += 1
            kept.append(
                {
                    "partition": r.partition,
                    "offset": r.offset,
                    "key": (r.key or b"").decode("utf-8", "replace"),
                    "value": r.value[:200].decode("utf-8", "replace"),
                    "headers": r.headers,
                }
            )
    return {
        "total": len(records),
        "by_stage": dict(by_stage.most_common()),
        "by_error_class": dict(by_class.most_common()),
        "by_reason": dict(by_reason.most_common()),
        "samples": kept,
    }


def replay_value(value: bytes, clear_deadline: bool) -> bytes:
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError:
        return value
    if type(obj) is not dict:
        return value
    obj["attempt"] = 0
    if clear_deadline and "deadline_ms" in obj:
        obj["deadline_ms"] = None
    return orjson.dumps(obj)


def replay(
    settings: Settings, records: list[DlqRecord], target: str, clear_deadline: bool, timeout: float = 60
) -> dict[str, int]:
    """Produce ``records`` to ``target``; counts of replayed and skipped (truncated) records."""
    producer = BatchProducer(settings)
    tracker = DeliveryTracker()
    replayed = skipped = 0
    for r in records:
        if "original_truncated" in r.headers:
            skipped += 1
            continue
        headers: Headers = [("replayed_from", f"{r.partition}:{r.offset}".encode())]
        producer.produce_batch(
            target, [(r.key or b"", replay_value(r.value, clear_deadline))], tracker, headers
        )
        replayed += 1
    producer.wait(tracker, timeout)
    return {"replayed": replayed, "skipped_truncated": skipped, "failed": tracker.failed + tracker.pending}
