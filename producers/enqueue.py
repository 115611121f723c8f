"""Enqueue a collection run: one request per client, keyed by client id, delivery confirmed before exit.

Idempotent producer (acks=all, ordered retries); every record's delivery report is counted, and a
record that was not confirmed makes the run fail loudly with the count, never silently.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from schemas.codec import request_encoder
from schemas.topics import REQUESTS
from streams.admin import require_topics
from streams.producer import BatchProducer, DeliveryTracker
from streams.settings import Settings

CHUNK = 10000


class EnqueueIncompleteError(RuntimeError):
    """Some requests were not confirmed by the broker."""

    def __init__(self, unconfirmed: int, total: int, errors: list[str]) -> None:
        detail = f": {'; '.join(errors[:3])}" if errors else ""
        super().__init__(
            f"{unconfirmed} of {total} request(s) were not confirmed by the broker{detail}; "
            "run the same command again to complete the run"
        )
        self.unconfirmed = unconfirmed


@dataclass
class EnqueueSummary:
    run_id: str
    enqueued: int
    seconds: float
    first_produced_at: float  # epoch seconds of the first request handed to the producer


def _chunks(ids: Iterable[str], size: int) -> Iterator[list[str]]:
    iterator = iter(ids)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def enqueue_run(
    settings: Settings,
    run_id: str,
    client_ids: Iterable[str],
    requested_at_ms: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> EnqueueSummary:
    """Produce one request per client id and wait for every delivery report."""
    topic = REQUESTS.name(settings.topic_prefix)
    require_topics(settings, [topic])
    producer = BatchProducer(settings)
    tracker = DeliveryTracker()
    requested_at = requested_at_ms if requested_at_ms is not None else int(time.time() * 1000)
    encode = request_encoder(run_id, requested_at)
    started = time.monotonic()
    first_at = time.time()
    for chunk in _chunks(client_ids, CHUNK):
        producer.produce_batch(topic, [(cid, encode(cid)) for cid in chunk], tracker)
        if progress is not None:
            progress(len(chunk))
    producer.flush(settings.broker_timeout_seconds)
    total = tracker.delivered + tracker.failed + tracker.pending
    if tracker.failed or tracker.pending:
        raise EnqueueIncompleteError(tracker.failed + tracker.pending, total, tracker.first_errors)
    return EnqueueSummary(run_id, tracker.delivered, time.monotonic() - started, first_at)
