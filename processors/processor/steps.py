"""The processor's own steps: decode requests (dead-lettering poison and expired ones) and produce the
outcome of a fetched batch (results, retry records, dead letters).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Message

from processors.processor.dead_letters import FailureGuard, RequestDeadLetters
from processors.processor.fetcher import Decoded, Failure, Outcome
from processors.processor.retry import retry_delay_ms
from processors.processor.retry_gate import RetryGate, not_before_ms
from processors.processor.subsystems.protocol import Record
from schemas.codec import decode_requests, encode_record
from schemas.result_batch import cut_batch
from streams.kafka.dead_letter import header_map
from streams.kafka.producer import BatchProducer, DeliveryTracker, Headers
from streams.observability import metrics as m
from streams.steps.faults import fault_point
from streams.steps.strategy import Batch, ForwardingStep, MessageRejected, ProcessingStep

log = logging.getLogger(__name__)
RECOUNT_SECONDS = 30.0


@dataclass
class OutcomeCounts:
    """What the produce steps of every chain of one processor did (a chain lives until a rebalance)."""

    results: int = 0
    partial: int = 0
    retried: int = 0
    dead_lettered: int = 0


@dataclass
class Topics:
    results: str
    retry: str
    dlq: str


class RequestDecoder:
    """Messages -> valid requests; poison and expired requests go to the DLQ at once."""

    def __init__(self, dead: RequestDeadLetters, guard: FailureGuard, gate: RetryGate | None = None) -> None:
        self._dead = dead
        self._guard = guard
        self._gate = gate  # names retry records whose not_before_ms is absurd
        self.decoded = 0
        self.invalid = 0
        self.expired = 0

    def __call__(self, batch: Batch[list[Message]]) -> Batch[Decoded]:
        fault_point("after_poll")
        messages = batch.payload if self._gate is None else self._out_of_range(batch)
        requests, bad = decode_requests([msg.value() for msg in messages])
        if bad:
            tracker = DeliveryTracker()
            bad_index = {i for i, _ in bad}
            for i, err in bad:
                self._dead.send(tracker, messages[i], type(err).__name__, str(err), "decode", err.reason)
            messages = [msg for i, msg in enumerate(messages) if i not in bad_index]
            batch.trackers.append(tracker)
            self.invalid += len(bad)
        now_ms = int(time.time() * 1000)
        expired = [i for i, r in enumerate(requests) if (r.get("deadline_ms") or now_ms) < now_ms]
        if expired:
            tracker = DeliveryTracker()
            for i in expired:
                deadline = requests[i]["deadline_ms"]
                text = f"deadline {deadline} passed {now_ms - deadline} ms before the fetch"
                self._dead.send(tracker, messages[i], "DeadlineExpired", text, "deadline", "expired")
            gone = set(expired)
            requests = [r for i, r in enumerate(requests) if i not in gone]
            messages = [msg for i, msg in enumerate(messages) if i not in gone]
            batch.trackers.append(tracker)
            self.expired += len(expired)
        self.decoded += len(requests)
        self._guard.record(len(requests), 0)  # only requests that go on to a fetch count for the guard
        return batch.replace(Decoded(requests, messages, [msg.partition() or 0 for msg in messages]))

    def _out_of_range(self, batch: Batch[list[Message]]) -> list[Message]:
        """The batch's records without the retry records whose not_before_ms is absurd (dead-lettered)."""
        messages = batch.payload
        assert self._gate is not None
        far = self._gate.out_of_range(messages)
        if not far:
            return messages
        tracker = DeliveryTracker()
        for i in far:
            text = (
                f"not_before_ms {not_before_ms(messages[i])} is over {self._gate.absurd_ms // 1000} s ahead"
            )
            self._dead.send(
                tracker, messages[i], "NotBeforeOutOfRange", text, "decode", "not_before_out_of_range"
            )
        batch.trackers.append(tracker)
        self.invalid += len(far)
        gone = set(far)
        return [msg for i, msg in enumerate(messages) if i not in gone]


class ProduceOutcome(ForwardingStep[None]):
    """Result batches to the results topic (a batch from request partition p to results partition p mod
    the results topic's partition count); failures to the retry topic, or the DLQ after the last attempt.

    A batch larger than ``results_value_limit`` bytes is cut into batches that fit; a single result that
    does not fit alone goes to the DLQ (``too_large``), cut to that limit, with the hash and length of
    the whole (``original_sha256``, ``original_truncated``)."""

    def __init__(
        self,
        producer: BatchProducer,
        topics: Topics,
        dead: RequestDeadLetters,
        guard: FailureGuard,
        retry: Any,
        next_step: ProcessingStep[Any],
        counts: OutcomeCounts | None = None,
        results_value_limit: int | None = None,
    ) -> None:
        super().__init__(next_step)
        self._producer = producer
        self._limit = results_value_limit  # bytes of a result batch at most (None: no cut)
        self._topics = topics
        self._dead = dead
        self._guard = guard
        self._retry = retry  # processors.processor.config.RetryConfig
        self._results_partitions = producer.partition_count(topics.results)
        self.counts = counts if counts is not None else OutcomeCounts()
        self._recount_after = 0.0  # monotonic time before which the count is not asked again
        self._recounted_for = -1  # the highest request partition the count was last asked for

    def submit(self, batch: Batch[Outcome]) -> None:
        # a produced batch the commit step refused is held, not produced again: refuse until it is taken
        if not self.hand_on():
            raise MessageRejected
        fault_point("after_fetch")
        outcome = batch.payload
        records, oversized = self._records(outcome)
        tracker = self._producer.produce_to_partitions(self._topics.results, records)
        fault_point("after_produce")
        clients = outcome.clients - len(oversized)
        self.counts.results += clients
        self.counts.partial += outcome.partial
        m.PROCESSOR_RECORDS.labels("ok").inc(max(0, clients - outcome.partial))
        if outcome.partial:
            m.PROCESSOR_RECORDS.labels("partial").inc(outcome.partial)
        dead = self._failures(outcome.failures, tracker) if outcome.failures else 0
        if oversized:
            dead += self._oversized(outcome, oversized, tracker)
        self.hand_on(Batch(None, batch.offsets, [*batch.trackers, tracker]))
        self._guard.record(0, dead)  # after the batch is handed on: its offsets stay in order

    def _records(self, outcome: Outcome) -> tuple[list[tuple[int, bytes]], list[tuple[int, Record, bytes]]]:
        """(results partition, value) of every result batch, cut by bytes where one is over the limit,
        and the single results that do not fit even alone."""
        spread = self._spread(outcome)
        limit = self._limit
        if limit is None or all(len(b.value) <= limit for b in outcome.encoded):
            return [(b.partition % spread, b.value) for b in outcome.encoded], []
        records: list[tuple[int, bytes]] = []
        oversized: list[tuple[int, Record, bytes]] = []
        for encoded in outcome.encoded:
            parts, too_big = cut_batch(encoded.value, limit)
            records.extend((encoded.partition % spread, value) for _, value in parts)
            oversized.extend(too_big)
        log.info("result batches over %d bytes cut into %d record(s)", limit, len(records))
        return records, oversized

    def _spread(self, outcome: Outcome) -> int:
        """The results topic's partition count, asked again (at most every 30 s) when a batch comes from a
        request partition beyond it: `kcollect topics grow` added partitions to both topics. A request
        partition higher than any asked for before asks at once (a second growth)."""
        top = max((b.partition for b in outcome.encoded), default=0)
        if top < self._results_partitions:
            return self._results_partitions
        if top > self._recounted_for or time.monotonic() >= self._recount_after:
            self._recount_after = time.monotonic() + RECOUNT_SECONDS
            self._recounted_for = max(self._recounted_for, top)
            before, self._results_partitions = (
                self._results_partitions,
                self._producer.partition_count(self._topics.results),
            )
            if self._results_partitions != before:
                log.info("results topic has %d partitions (was %d)", self._results_partitions, before)
        return self._results_partitions

    def _oversized(
        self, outcome: Outcome, rows: list[tuple[int, Record, bytes]], tracker: DeliveryTracker
    ) -> int:
        """Dead-letter each result too large for the results topic: the row cut, with its hash."""
        where = {(r["run_id"], r["client_id"]): i for i, r in enumerate(outcome.requests)}
        for _, identity, value in rows:
            client = str(identity["client_id"])
            index = where[(identity["run_id"], identity["client_id"])]
            error = (
                f"the result of client {client} is {len(value)} bytes; "
                f"{self._topics.results} takes at most {self._limit}"
            )
            self._dead.send(
                tracker, outcome.messages[index], "RecordTooLarge", error, "produce", "too_large",
                row=(0, client, value), run_id=str(identity["run_id"]), max_value_bytes=self._limit,
            )  # fmt: skip
        self.counts.dead_lettered += len(rows)
        m.PROCESSOR_RECORDS.labels("dead_lettered").inc(len(rows))
        return len(rows)

    def _failures(self, failures: list[Failure], tracker: DeliveryTracker) -> int:
        now_ms = int(time.time() * 1000)
        dead = 0
        for failure in failures:
            if failure.reason is not None:  # the compute or the encoding failed: retrying cannot help
                self._dead.send(
                    tracker, failure.message, failure.error_class, failure.error, "compute", failure.reason
                )
                dead += 1
                continue
            attempt = int(failure.request.get("attempt", 0)) + 1
            if attempt >= self._retry.max_attempts:
                self._dead.send(
                    tracker, failure.message, failure.error_class, failure.error, "fetch", "retries_exhausted"
                )
                dead += 1
                continue
            self._send_retry(failure, attempt, now_ms, tracker)
        self.counts.retried += len(failures) - dead
        self.counts.dead_lettered += dead
        m.PROCESSOR_RECORDS.labels("retry").inc(len(failures) - dead)
        m.PROCESSOR_RECORDS.labels("dead_lettered").inc(dead)
        return dead

    def _send_retry(self, failure: Failure, attempt: int, now_ms: int, tracker: DeliveryTracker) -> None:
        previous = header_map(failure.message.headers())  # type: ignore[arg-type]
        first = previous.get("first_failure_ms") or str(now_ms)
        delay = retry_delay_ms(attempt, self._retry.delay_ms, self._retry.max_delay_ms)
        headers: Headers = [
            ("not_before_ms", str(now_ms + delay).encode()),
            ("attempts", str(attempt).encode()),
            ("first_failure_ms", first.encode()),
            ("error_class", failure.error_class.encode()),
            ("error_message", failure.error.encode("utf-8", "replace")),
            ("original_topic", previous.get("original_topic", failure.message.topic() or "").encode()),
        ]
        value = encode_record({**failure.request, "attempt": attempt})
        self._producer.produce_batch(
            self._topics.retry, [(failure.request["client_id"], value)], tracker, headers
        )
