"""Dead-lettering requests (headers saying why, where from and when) and the guard that stops the
processor when almost every recent fetch fails (a bad deploy)."""

from __future__ import annotations

import logging
from collections import deque

from confluent_kafka import Message

from streams.kafka.dead_letter import MAX_ORIGINAL_BYTES, BatchRow, dead_letter, header_map
from streams.kafka.producer import BatchProducer, DeliveryTracker
from streams.observability import metrics as m

log = logging.getLogger(__name__)


class ProcessorFailing(RuntimeError):
    """Almost every recent request was dead-lettered: stop rather than empty the topic into the DLQ."""


class FailureGuard:
    """Trips when more than ``ratio`` of the last ``window`` fetched requests were dead-lettered.

    It guards against a bad deploy (every fetch failing, so every request would be emptied into the
    DLQ): only requests that reached a fetch count, and only fetch failures count against them.
    Malformed and expired requests are dead-lettered without counting, so a backlog of them (an old
    cycle after an outage) is drained at full speed instead of stopping the processor on each start.
    """

    def __init__(self, window: int = 1000, ratio: float = 0.9) -> None:
        self.window = window
        self.ratio = ratio
        self._batches: deque[list[int]] = deque()
        self._total = 0
        self._dead = 0

    def record(self, total: int, dead: int) -> None:
        self._batches.append([total, dead])
        self._total += total
        self._dead += dead
        while self._batches and self._total - self._batches[0][0] >= self.window:
            old_total, old_dead = self._batches.popleft()
            self._total -= old_total
            self._dead -= old_dead
        if self._total >= self.window and self._dead > self.ratio * self._total:
            raise ProcessorFailing(
                f"{self._dead} of the last {self._total} requests were dead-lettered "
                f"(limit {self.ratio:.0%}); stopping. Check the subsystems and `kcollect dlq inspect`."
            )


class RequestDeadLetters:
    """Produces dead letters for failed requests, counting them and logging where they came from."""

    def __init__(
        self, producer: BatchProducer, topic: str, max_value_bytes: int = MAX_ORIGINAL_BYTES
    ) -> None:
        self._producer = producer
        self._topic = topic
        self.max_value_bytes = max_value_bytes  # the DLQ topic's limit less room for headers

    def send(
        self,
        tracker: DeliveryTracker,
        msg: Message,
        error_class: str,
        error: str,
        stage: str,
        reason: str,
        row: BatchRow | None = None,
        run_id: str | None = None,
        max_value_bytes: int | None = None,
    ) -> None:
        """Dead-letter ``msg`` (or, with ``row``, that one result made from it), its value cut to
        ``max_value_bytes`` (default: what the DLQ takes) with the hash of the whole."""
        previous = header_map(msg.headers())  # type: ignore[arg-type]
        attempts = int(previous.get("attempts", "0") or 0) + 1
        first = int(previous.get("first_failure_ms", "0") or 0) or None
        key, value, headers = dead_letter(
            msg,
            error_class,
            error,
            stage,
            attempts,
            first,
            run_id,
            row,
            min(self.max_value_bytes, max_value_bytes or self.max_value_bytes),
        )
        headers.append(("reason", reason.encode()))
        self._producer.produce_batch(self._topic, [(key or b"", value)], tracker, headers)
        m.PROCESSOR_DEAD_LETTERED.labels(stage, error_class).inc()
        log.warning(
            "%s request at %s/%d@%d dead-lettered (%s, %s): %s",
            _ADJECTIVE.get(stage, stage),
            msg.topic(),
            msg.partition(),
            msg.offset(),
            reason,
            error_class,
            error[:200],
        )


_ADJECTIVE = {
    "decode": "invalid",
    "deadline": "expired",
    "fetch": "failed",
    "compute": "uncomputable",
    "produce": "oversized",
}
