"""The processor service: requests in, results out.

Chain (one batch at a time, offsets travel with it and are committed last):
  DecodeRequests -> FetchAndCompute -> ProduceResults -> CommitOffsets
A record that cannot be decoded is logged with its topic/partition/offset, counted, and dead-lettered
with headers saying why; the rest of its batch goes on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Message

from processors.collect import build_results, fetch_all
from processors.compute import ComputeFn, get_compute
from processors.subsystems import Subsystem, default_subsystems
from schemas.codec import decode_requests, encode_record
from schemas.topics import REQUESTS, REQUESTS_DLQ, RESULTS
from streams.commit import CommitOffsets
from streams.dlq import dead_letter
from streams.producer import BatchProducer, DeliveryTracker
from streams.service import run_consumer_service
from streams.settings import Settings
from streams.strategy import Batch, ProcessingStep, TransformStep

log = logging.getLogger(__name__)
Record = dict[str, Any]


@dataclass
class ProcessorStats:
    decoded: int = 0
    invalid: int = 0
    results: int = 0


class ProduceResults:
    """Produces a batch's results keyed by client id and attaches the delivery tracker to the batch."""

    def __init__(self, producer: BatchProducer, topic: str, next_step: ProcessingStep[Any]) -> None:
        self._producer = producer
        self._topic = topic
        self._next = next_step

    def submit(self, batch: Batch[list[Record]]) -> None:
        tracker = self._producer.produce_batch(
            self._topic, [(r["client_id"], encode_record(r)) for r in batch.payload]
        )
        self._next.submit(Batch(None, batch.offsets, [*batch.trackers, tracker]))

    def poll(self) -> None:
        self._next.poll()

    def join(self, timeout: float | None = None) -> None:
        self._next.join(timeout)

    def close(self) -> None:
        self._next.close()

    def terminate(self) -> None:
        self._next.terminate()


class RequestHandler:
    """The processor's pure-ish work: decode, dead-letter the bad, fetch, compute."""

    def __init__(
        self, settings: Settings, producer: BatchProducer, subsystems: Sequence[Subsystem], compute: ComputeFn
    ) -> None:
        self._producer = producer
        self._dlq_topic = REQUESTS_DLQ.name(settings.topic_prefix)
        self._subsystems = subsystems
        self._compute = compute
        self._chunk = settings.subsystem_batch
        self.stats = ProcessorStats()

    def decode(self, batch: Batch[list[Message]]) -> Batch[list[Record]]:
        messages = batch.payload
        requests, bad = decode_requests([m.value() for m in messages])
        self.stats.decoded += len(requests)
        if bad:
            batch.trackers.append(self._dead_letter([(messages[i], err) for i, err in bad]))
        return batch.replace(requests)

    def _dead_letter(self, failures: list[tuple[Message, Exception]]) -> DeliveryTracker:
        tracker = DeliveryTracker()
        for msg, err in failures:
            self.stats.invalid += 1
            log.warning("invalid request at %s/%d@%d: %s", msg.topic(), msg.partition(), msg.offset(), err)
            key, value, headers = dead_letter(msg, type(err).__name__, str(err), "decode")
            self._producer.produce_batch(self._dlq_topic, [(key or b"", value)], tracker, headers)
        return tracker

    def collect(self, batch: Batch[list[Record]]) -> Batch[list[Record]]:
        requests = batch.payload
        columns = fetch_all(self._subsystems, requests, self._chunk)
        results = build_results(requests, columns, self._compute, int(time.time() * 1000))
        self.stats.results += len(results)
        return batch.replace(results)


def build_processor_chain(
    consumer: Consumer, settings: Settings, producer: BatchProducer, handler: RequestHandler
) -> ProcessingStep[list[Message]]:
    """DecodeRequests -> FetchAndCompute -> ProduceResults -> CommitOffsets."""
    commit = CommitOffsets(
        consumer, settings.commit_interval_seconds, producer.poll, max_waiting=settings.max_in_flight_batches
    )
    produce = ProduceResults(producer, RESULTS.name(settings.topic_prefix), commit)
    fetch: TransformStep[list[Record], list[Record]] = TransformStep(handler.collect, produce)
    return TransformStep(handler.decode, fetch)


def run_processor(settings: Settings, ready_file: Path | None = None) -> dict[str, Any]:
    """The `kcollect processor` service: runs until SIGTERM/SIGINT."""
    from streams.admin import require_topics

    requests_topic = REQUESTS.name(settings.topic_prefix)
    require_topics(
        settings,
        [requests_topic, RESULTS.name(settings.topic_prefix), REQUESTS_DLQ.name(settings.topic_prefix)],
    )
    producer = BatchProducer(settings)
    handler = RequestHandler(
        settings, producer, default_subsystems(settings.sim_latency_ms / 1000), get_compute("summary")
    )
    try:
        loop_stats = run_consumer_service(
            settings,
            settings.processor_group,
            [requests_topic],
            lambda consumer: build_processor_chain(consumer, settings, producer, handler),
            ready_file,
        )
    finally:
        remaining = producer.flush(settings.shutdown_deadline_seconds)
        if remaining:
            log.error("%d result(s) not delivered at exit; their requests stay uncommitted", remaining)
    return asdict(loop_stats) | asdict(handler.stats)
