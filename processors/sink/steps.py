"""The sink's consumer-thread steps: decode results into per-partition segments, and window them.

``ResultDecoder.decode`` turns one consumed batch into a ``Segment`` per partition (valid rows, their
offsets and messages); a record that fails validation is dead-lettered at once with headers saying why
(stage ``sink-decode``), and its delivery tracker rides with its partition's next window, so its offset
is committed only once the dead letter is confirmed. ``WindowStep`` keeps one window per partition
(``processors.sink.windowing``) and hands the windows that closed together to the insert step as one
``WindowGroup`` (one insert), in closing order; it refuses new batches (``MessageRejected``) once the
groups the insert step cannot take yet hold a full window's worth of rows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from itertools import repeat
from typing import Any

import orjson
from confluent_kafka import Message

from processors.sink.insert import Bad, SinkStats
from processors.sink.result_rows import decode_rows
from processors.sink.windowing import (
    PartitionWindow,
    Segment,
    WindowLimits,
    WindowRows,
    WindowSet,
    group_windows,
)
from schemas.result_batch import expand_batch, is_batch
from streams.kafka.dead_letter import MAX_ORIGINAL_BYTES, BatchRow, dead_letter
from streams.kafka.producer import BatchProducer, DeliveryTracker
from streams.observability.metrics import SINK_DEAD_LETTERED, SINK_OPEN_WINDOWS
from streams.steps.strategy import Batch, ForwardingStep, MessageRejected, ProcessingStep

log = logging.getLogger(__name__)


class ResultDeadLetters:
    """Produces dead letters of results to the results DLQ, with a ``run_id`` header when known."""

    def __init__(
        self, producer: BatchProducer, topic: str, stats: SinkStats, max_value_bytes: int = MAX_ORIGINAL_BYTES
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._stats = stats
        self._max_value_bytes = max_value_bytes  # what the DLQ topic takes, less room for headers

    def send(
        self,
        msg: Message,
        exc: Exception,
        stage: str,
        tracker: DeliveryTracker,
        row: BatchRow | None = None,
    ) -> None:
        """Dead-letter ``msg``, or only its ``row`` when it is a result batch."""
        log.warning(
            "%s result at %s/%d@%d%s: %s",
            "invalid" if stage == "sink-decode" else "ClickHouse refused the",
            msg.topic(),
            msg.partition(),
            msg.offset(),
            "" if row is None else f" row {row[0]}",
            exc,
        )
        key, value, headers = dead_letter(
            msg, type(exc).__name__, str(exc), stage, row=row, max_value_bytes=self._max_value_bytes
        )
        self._producer.produce_batch(self._topic, [(key or b"", value)], tracker, headers)
        SINK_DEAD_LETTERED.labels(stage).inc()

    def refused_rows(self, window: WindowRows, bad: Bad) -> DeliveryTracker:
        """Dead-letter rows ClickHouse refused on their own (after bisecting their window)."""
        tracker = DeliveryTracker()
        for index, exc in bad:
            msg = window.sources[index]
            self.send(msg, exc, "sink-insert", tracker, batch_row(msg, window.positions[index]))
        return tracker


def batch_row(msg: Message, position: int) -> BatchRow | None:
    """Row ``position`` of ``msg`` (its client and ClientResult JSON) when ``msg`` is a result batch."""
    try:
        obj = orjson.loads(msg.value() or b"")
    except orjson.JSONDecodeError:
        return None
    if not is_batch(obj):
        return None
    record = expand_batch(obj)[position]
    return position, str(record["client_id"]), orjson.dumps(record)


class ResultDecoder:
    """Decodes a consumed batch into one ``Segment`` per partition; bad records are dead-lettered."""

    def __init__(self, dead_letters: ResultDeadLetters, stats: SinkStats) -> None:
        self._dead_letters = dead_letters
        self._stats = stats

    def decode(self, batch: Batch[list[Message]]) -> Batch[list[Segment]]:
        """One segment per partition, in first-seen order: each partition's records are decoded
        together, so the decoded columns are the segment's own (no copy)."""
        started = time.thread_time()
        messages: list[Any] = batch.payload  # Any: offsets and partitions of consumed messages are set
        by_partition: dict[int, list[Any]] = {}
        for msg in messages:
            by_partition.setdefault(msg.partition(), []).append(msg)
        tracker: DeliveryTracker | None = None
        segments: list[Segment] = []
        for partition, records in by_partition.items():
            values = [m.value() for m in records]
            decoded = decode_rows(values)
            self._stats.decoded += len(decoded.positions)
            offsets: list[int] = []
            sources: list[Any] = []
            for msg, count in zip(records, decoded.counts, strict=True):
                if count:
                    offsets.extend(repeat(msg.offset(), count))
                    sources.extend(repeat(msg, count))
            first = records[0]
            segment = Segment(
                (first.topic(), partition),
                first.offset(),
                records[-1].offset() + 1,
                decoded.columns,
                offsets,
                sources,
                sum(len(v or b"") for v in values),
                positions=decoded.positions,
            )
            segments.append(segment)
            if decoded.bad:
                tracker = tracker or DeliveryTracker()
                for bad in decoded.bad:
                    self._stats.invalid += 1
                    self._dead_letters.send(
                        records[bad.index], bad.error, "sink-decode", tracker, bad.batch_row()
                    )
                segment.trackers.append(tracker)
        self._stats.decode_seconds += time.thread_time() - started
        return Batch(segments, batch.offsets, batch.trackers)


class WindowStep(ForwardingStep[WindowRows]):
    """Adds segments to per-partition windows; the windows closed together go to the next step as one
    group, in closing order."""

    def __init__(
        self,
        limits: WindowLimits,
        next_step: ProcessingStep[WindowRows],
        stats: SinkStats,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(next_step)
        self._windows = WindowSet(limits)
        self._stats = stats
        self._clock = clock

    def _hold(self, windows: list[PartitionWindow]) -> None:
        """Windows closed together wait for the insert step as one group (one by one: each its own),
        with each partition's next offset and every delivery they await."""
        if not windows:
            return
        for closed in [windows] if self._windows.limits.grouped else [[w] for w in windows]:
            group = group_windows(closed)
            trackers = [t for w in closed for t in w.trackers]
            self._held.append(Batch[WindowRows](group, group.ends(), trackers))
            self._stats.windows += len(closed)

    def _collect_due(self) -> None:
        self._hold(self._windows.due(self._clock()))
        SINK_OPEN_WINDOWS.set(len(self._windows))

    def submit(self, batch: Batch[list[Segment]]) -> None:
        # Closed windows the insert step has not taken yet may pile up to one window's worth of rows
        # (several partitions close at once by time); beyond that, refuse: the partitions pause.
        if not self.hand_on() and sum(b.payload.count for b in self._held) >= self._windows.limits.rows:
            raise MessageRejected
        now = self._clock()
        segments = batch.payload
        if batch.trackers and segments:
            segments[0].trackers.extend(batch.trackers)
        for segment in segments:
            self._windows.add(segment, now)
        self._hold(self._windows.due(now))
        SINK_OPEN_WINDOWS.set(len(self._windows))
        self.hand_on()

    def poll(self) -> None:
        self._collect_due()
        super().poll()

    def join(self, timeout: float | None = None) -> None:
        self._hold(self._windows.close_all())
        super().join(timeout)

    def terminate(self) -> None:
        self._windows.close_all()
        super().terminate()
