"""The sink service: results in, ClickHouse rows out.

Chain: DecodeResults -> WindowStep (N rows / B bytes / T seconds) -> InsertBatch -> CommitOffsets.
Offsets are committed only after ClickHouse acknowledged the insert that holds them. While
ClickHouse fails, the insert step keeps the batch, retries with backoff and rejects new batches, so
the stream processor pauses the partitions and keeps polling.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Message

from processors.columns import to_columns
from processors.windowing import Window, WindowLimits
from schemas.codec import decode_results
from schemas.ddl import insert_results_sql
from schemas.topics import RESULTS, RESULTS_DLQ
from streams.clickhouse import connect
from streams.commit import CommitOffsets
from streams.dlq import dead_letter
from streams.producer import BatchProducer, DeliveryTracker
from streams.service import run_consumer_service
from streams.settings import Settings
from streams.strategy import Batch, MessageRejected, ProcessingStep, TransformStep

log = logging.getLogger(__name__)
Record = dict[str, Any]


@dataclass
class SinkStats:
    decoded: int = 0
    invalid: int = 0
    inserted: int = 0
    inserts: int = 0
    insert_failures: int = 0


@dataclass
class Rows:
    rows: list[Record]
    nbytes: int


class WindowStep:
    """Collects decoded rows into a window and hands it on when due."""

    def __init__(self, limits: WindowLimits, next_step: ProcessingStep[list[Record]]) -> None:
        self._limits = limits
        self._next = next_step
        self._window = Window(limits)
        self._closed: Batch[list[Record]] | None = None

    def _push_closed(self) -> bool:
        if self._closed is not None:
            try:
                self._next.submit(self._closed)
            except MessageRejected:
                return False
            self._closed = None
        return True

    def _close_if_due(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._closed is None and not self._window.empty and (force or self._window.is_due(now)):
            window = self._window
            self._closed = Batch(window.rows, window.offsets, window.trackers)
            self._window = Window(self._limits)
        self._push_closed()

    def submit(self, batch: Batch[Rows]) -> None:
        if self._closed is not None and not self._push_closed():
            raise MessageRejected
        self._window.add(
            batch.payload.rows, batch.payload.nbytes, batch.offsets, batch.trackers, time.monotonic()
        )
        self._close_if_due()

    def poll(self) -> None:
        self._close_if_due()
        self._next.poll()

    def join(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout if timeout is not None else 3600.0)
        self._close_if_due(force=True)
        while self._closed is not None and time.monotonic() < deadline:
            self._next.poll()
            time.sleep(0.01)
            self._push_closed()
        self._next.join(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        self._next.close()

    def terminate(self) -> None:
        self._window = Window(self._limits)
        self._closed = None
        self._next.terminate()


class InsertBatch:
    """One columnar insert per window; on failure keeps the batch and retries with backoff."""

    def __init__(self, settings: Settings, next_step: ProcessingStep[Any], stats: SinkStats) -> None:
        address = settings.clickhouse()
        self._client = connect(address)
        self._sql = insert_results_sql(address.database)
        self._next = next_step
        self._stats = stats
        self._held: Batch[list[Record]] | None = None
        self._retry_at = 0.0
        self._backoff = 0.5

    def submit(self, batch: Batch[list[Record]]) -> None:
        if self._held is not None:
            self._try_insert()
            if self._held is not None:
                raise MessageRejected
        self._held = batch
        self._try_insert()

    def _try_insert(self) -> None:
        batch = self._held
        if batch is None or time.monotonic() < self._retry_at:
            return
        if batch.payload:
            try:
                self._client.execute(self._sql, to_columns(batch.payload), columnar=True)
            except Exception as exc:
                self._stats.insert_failures += 1
                self._retry_at = time.monotonic() + self._backoff
                log.warning(
                    "insert of %d row(s) failed (retry in %.1f s): %s",
                    len(batch.payload),
                    self._backoff,
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                )
                self._backoff = min(self._backoff * 2, 10.0)
                self._client.disconnect()
                return
            self._stats.inserts += 1
            self._stats.inserted += len(batch.payload)
        self._backoff = 0.5
        self._held = None
        self._next.submit(Batch(None, batch.offsets, batch.trackers))

    def poll(self) -> None:
        self._try_insert()
        self._next.poll()

    def join(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout if timeout is not None else 3600.0)
        while self._held is not None and time.monotonic() < deadline:
            self._try_insert()
            if self._held is not None:
                time.sleep(min(0.1, max(0.0, self._retry_at - time.monotonic())))
        self._next.join(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        self._next.close()

    def terminate(self) -> None:
        self._held = None
        self._next.terminate()


class ResultDecoder:
    """Decodes result records; the bad ones are dead-lettered with headers saying why."""

    def __init__(self, settings: Settings, producer: BatchProducer, stats: SinkStats) -> None:
        self._producer = producer
        self._dlq_topic = RESULTS_DLQ.name(settings.topic_prefix)
        self._stats = stats

    def decode(self, batch: Batch[list[Message]]) -> Batch[Rows]:
        messages = batch.payload
        values = [m.value() for m in messages]
        rows, bad = decode_results(values)
        self._stats.decoded += len(rows)
        if bad:
            tracker = DeliveryTracker()
            for index, err in bad:
                msg = messages[index]
                self._stats.invalid += 1
                log.warning("invalid result at %s/%d@%d: %s", msg.topic(), msg.partition(), msg.offset(), err)
                key, value, headers = dead_letter(msg, type(err).__name__, str(err), "sink-decode")
                self._producer.produce_batch(self._dlq_topic, [(key or b"", value)], tracker, headers)
            batch.trackers.append(tracker)
        nbytes = sum(len(v) for v in values if v)
        return batch.replace(Rows(rows, nbytes))


def build_sink_chain(
    consumer: Consumer, settings: Settings, producer: BatchProducer, stats: SinkStats
) -> ProcessingStep[list[Message]]:
    """DecodeResults -> WindowStep -> InsertBatch -> CommitOffsets."""
    commit = CommitOffsets(consumer, settings.commit_interval_seconds, producer.poll, max_waiting=16)
    insert = InsertBatch(settings, commit, stats)
    window = WindowStep(
        WindowLimits(settings.sink_batch_rows, settings.sink_batch_bytes, settings.sink_batch_seconds), insert
    )
    return TransformStep(ResultDecoder(settings, producer, stats).decode, window)


def run_sink(settings: Settings, ready_file: Path | None = None) -> dict[str, Any]:
    """The `kcollect sink` service: runs until SIGTERM/SIGINT."""
    from streams.admin import require_topics

    results_topic = RESULTS.name(settings.topic_prefix)
    require_topics(settings, [results_topic, RESULTS_DLQ.name(settings.topic_prefix)])
    producer = BatchProducer(settings)
    stats = SinkStats()
    try:
        loop_stats = run_consumer_service(
            settings,
            settings.sink_group,
            [results_topic],
            lambda consumer: build_sink_chain(consumer, settings, producer, stats),
            ready_file,
        )
    finally:
        producer.flush(settings.shutdown_deadline_seconds)
    return asdict(loop_stats) | asdict(stats)
