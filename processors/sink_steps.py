"""The sink's consumer-thread steps: decode results into per-partition segments, and window them.

``ResultDecoder.decode`` turns one consumed batch into a ``Segment`` per partition (valid rows, their
offsets and messages); a record that fails validation is dead-lettered at once with headers saying why
(stage ``sink-decode``), and its delivery tracker rides with its partition's next window, so its offset
is committed only once the dead letter is confirmed. ``WindowStep`` keeps one window per partition
(``processors.windowing``) and hands each closed window to the insert step, in closing order; it
refuses new batches (``MessageRejected``) once the closed windows the insert step cannot take yet
hold a full window's worth of rows.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from confluent_kafka import Message

from processors.insert import Bad, SinkStats
from processors.result_rows import decode_rows
from processors.windowing import PartitionWindow, Segment, WindowLimits, WindowSet
from streams.dlq import dead_letter
from streams.metrics import SINK_DEAD_LETTERED, SINK_OPEN_WINDOWS
from streams.producer import BatchProducer, DeliveryTracker
from streams.strategy import Batch, MessageRejected, ProcessingStep, join_after

log = logging.getLogger(__name__)


class DeadLetters:
    """Produces dead letters of results to the results DLQ, with a ``run_id`` header when known."""

    def __init__(self, producer: BatchProducer, topic: str, stats: SinkStats) -> None:
        self._producer = producer
        self._topic = topic
        self._stats = stats

    def send(self, msg: Message, exc: Exception, stage: str, tracker: DeliveryTracker) -> None:
        log.warning(
            "%s result at %s/%d@%d: %s",
            "invalid" if stage == "sink-decode" else "ClickHouse refused the",
            msg.topic(),
            msg.partition(),
            msg.offset(),
            exc,
        )
        key, value, headers = dead_letter(msg, type(exc).__name__, str(exc), stage)
        self._producer.produce_batch(self._topic, [(key or b"", value)], tracker, headers)
        SINK_DEAD_LETTERED.labels(stage).inc()

    def refused_rows(self, window: PartitionWindow, bad: Bad) -> DeliveryTracker:
        """Dead-letter rows ClickHouse refused on their own (after bisecting their window)."""
        tracker = DeliveryTracker()
        for index, exc in bad:
            self.send(window.sources[index], exc, "sink-insert", tracker)
        return tracker


class ResultDecoder:
    """Decodes a consumed batch into one ``Segment`` per partition; bad records are dead-lettered."""

    def __init__(self, dead_letters: DeadLetters, stats: SinkStats) -> None:
        self._dead_letters = dead_letters
        self._stats = stats

    def decode(self, batch: Batch[list[Message]]) -> Batch[list[Segment]]:
        started = time.thread_time()
        messages: list[Any] = batch.payload  # Any: offsets and partitions of consumed messages are set
        values = [m.value() for m in messages]
        rows, bad = decode_rows(values)
        self._stats.decoded += len(rows)
        bad_at = {index for index, _ in bad}
        segments: dict[int, Segment] = {}
        next_row = iter(rows).__next__
        for index, msg in enumerate(messages):
            partition, offset = msg.partition(), msg.offset()
            segment = segments.get(partition)
            if segment is None:
                segment = Segment((msg.topic(), partition), offset, offset, [], [], [], 0)
                segments[partition] = segment
            segment.end = offset + 1
            if bad_at and index in bad_at:
                continue
            segment.rows.append(next_row())
            segment.offsets.append(offset)
            segment.sources.append(msg)
            segment.nbytes += len(values[index] or b"")
        if bad:
            tracker = DeliveryTracker()
            for index, err in bad:
                msg = messages[index]
                self._stats.invalid += 1
                self._dead_letters.send(msg, err, "sink-decode", tracker)
            for partition in {messages[index].partition() for index, _ in bad}:
                segments[partition].trackers.append(tracker)
        self._stats.decode_seconds += time.thread_time() - started
        return Batch(list(segments.values()), batch.offsets, batch.trackers)


class WindowStep:
    """Adds segments to per-partition windows; closed windows go to the next step in closing order."""

    def __init__(
        self,
        limits: WindowLimits,
        next_step: ProcessingStep[PartitionWindow],
        stats: SinkStats,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._windows = WindowSet(limits)
        self._next = next_step
        self._stats = stats
        self._clock = clock
        self._closed: deque[PartitionWindow] = deque()

    def _push(self) -> bool:
        while self._closed:
            window = self._closed[0]
            try:
                self._next.submit(Batch(window, {window.partition: window.end}, window.trackers))
            except MessageRejected:
                return False
            self._closed.popleft()
            self._stats.windows += 1
        return True

    def _collect_due(self) -> None:
        self._closed.extend(self._windows.due(self._clock()))
        SINK_OPEN_WINDOWS.set(len(self._windows))

    def submit(self, batch: Batch[list[Segment]]) -> None:
        # Closed windows the insert step has not taken yet may pile up to one window's worth of rows
        # (several partitions close at once by time); beyond that, refuse: the partitions pause.
        if not self._push() and sum(len(w.rows) for w in self._closed) >= self._windows.limits.rows:
            raise MessageRejected
        now = self._clock()
        segments = batch.payload
        if batch.trackers and segments:
            segments[0].trackers.extend(batch.trackers)
        for segment in segments:
            self._closed.extend(self._windows.add(segment, now))
        self._collect_due()
        self._push()

    def poll(self) -> None:
        self._collect_due()
        self._push()
        self._next.poll()

    def join(self, timeout: float | None = None) -> None:
        self._closed.extend(self._windows.close_all())
        join_after(self._push, self._next, timeout)

    def close(self) -> None:
        self._next.close()

    def terminate(self) -> None:
        self._windows.close_all()
        self._closed.clear()
        self._next.terminate()
