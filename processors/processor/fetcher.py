"""Fetch a decoded batch from every subsystem at once and turn it into results and failures.

Each subsystem is called once per ``batch_size`` clients, all chunks concurrently (bounded by the
subsystem's ``max_concurrency``). What a client gets when a subsystem failed for it:

- some subsystems answered: a ``partial`` result, the failed subsystems' metrics named in ``missing``;
- every subsystem failed, or a ``required`` one did: no result; the request is a *failure*, which the
  produce step sends to the retry topic (or, after the last attempt, to the DLQ).

A client whose compute function raises, or whose result cannot be encoded (an integer beyond 64
bits, a non-string key, a value of the wrong type), is a *permanent* failure (``reason``
``compute_failed`` or ``unencodable``): the produce step dead-letters it at once; its batch-mates
are stored. The batch is encoded whole first; only when that raises is each client tried alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Message

from processors.processor.caller import SubsystemCaller
from processors.processor.collect import EncodedBatch, check_names, encode_results
from processors.processor.compute import ComputeFn
from processors.processor.subsystems.protocol import MetricColumns, Record
from schemas.result_batch import encode_batch


@dataclass
class Decoded:
    """Valid requests with the message and partition each came from (same order)."""

    requests: list[Record]
    messages: list[Message]
    partitions: list[int] | None = None  # None: all from partition 0

    def partition_list(self) -> list[int]:
        return self.partitions if self.partitions is not None else [0] * len(self.requests)


@dataclass
class Failure:
    """A request no result could be made for."""

    request: Record
    message: Message
    error_class: str
    error: str
    reason: str | None = None  # set: permanent (dead-lettered at once with this reason), else retried


@dataclass
class Outcome:
    """Result batches (``schemas.result_batch``) in request order, and the failures."""

    encoded: list[EncodedBatch]
    partial: int = 0
    failures: list[Failure] = field(default_factory=list)
    requests: list[Record] = field(default_factory=list)  # the batch's requests and messages (same order):
    messages: list[Message] = field(default_factory=list)  # where an oversized result is dead-lettered from

    @property
    def clients(self) -> int:
        """How many clients the result batches hold."""
        return sum(batch.clients for batch in self.encoded)


Span = tuple[int, int, SubsystemCaller, BaseException]


class Fetcher:
    """Calls the subsystems for a batch and builds its results (a coroutine run on the processor's loop)."""

    def __init__(self, callers: Sequence[SubsystemCaller], compute: ComputeFn) -> None:
        self.callers = list(callers)
        self.compute = compute

    async def _one(self, caller: SubsystemCaller, requests: list[Record]) -> tuple[MetricColumns, list[Span]]:
        size = caller.batch_size
        starts = range(0, len(requests), size)
        answers: list[Any] = await asyncio.gather(
            *(caller.call(requests[s : s + size]) for s in starts), return_exceptions=True
        )
        columns: MetricColumns = {metric: [] for metric in caller.metrics}
        spans: list[Span] = []
        for start, answer in zip(starts, answers, strict=True):
            end = min(start + size, len(requests))
            if isinstance(answer, BaseException):
                if isinstance(answer, asyncio.CancelledError):
                    raise answer
                spans.append((start, end, caller, answer))
                for column in columns.values():
                    column.extend([None] * (end - start))
            else:
                for metric, column in columns.items():
                    column.extend(answer[metric])
        return columns, spans

    async def process(self, batch: Decoded) -> Outcome:
        requests = batch.requests
        if not requests:
            return Outcome([])
        fetched = await asyncio.gather(*(self._one(c, requests) for c in self.callers))
        columns: MetricColumns = {}
        spans: list[Span] = []
        for cols, sub_spans in fetched:
            columns.update(cols)
            spans.extend(sub_spans)
        now_ms = int(time.time() * 1000)
        if not spans:
            return self._encode(batch, list(range(len(requests))), columns, now_ms, [])
        return self._split(batch, columns, spans, now_ms)

    def _encode(
        self, batch: Decoded, keep: list[int], columns: MetricColumns, now_ms: int, failures: list[Failure]
    ) -> Outcome:
        """Result batches of the clients ``keep`` indexes; a client whose compute or encoding fails
        becomes a permanent failure instead of failing the batch."""
        partitions = batch.partition_list()
        if len(keep) != len(batch.requests):
            columns = {metric: [column[i] for i in keep] for metric, column in columns.items()}
        requests = [batch.requests[i] for i in keep]
        kept_partitions = [partitions[i] for i in keep]
        try:
            encoded, partial = encode_results(requests, kept_partitions, columns, self.compute, now_ms)
            return Outcome(encoded, partial, failures, batch.requests, batch.messages)
        except Exception:
            pass  # some client's compute or encoding fails: find which, alone
        good: list[int] = []
        bad: list[Failure] = []
        for j, i in enumerate(keep):
            one = {metric: [column[j]] for metric, column in columns.items()}
            failure = self._try_one(batch, i, one, now_ms)
            if failure is None:
                good.append(j)
            else:
                bad.append(failure)
        encoded, partial = encode_results(
            [requests[j] for j in good],
            [kept_partitions[j] for j in good],
            {metric: [column[j] for j in good] for metric, column in columns.items()},
            self.compute,
            now_ms,
        )
        return Outcome(encoded, partial, [*failures, *bad], batch.requests, batch.messages)

    def _try_one(self, batch: Decoded, i: int, columns: MetricColumns, now_ms: int) -> Failure | None:
        request, message = batch.requests[i], batch.messages[i]
        try:
            values = self.compute({name: col[0] for name, col in columns.items() if col[0] is not None})
        except Exception as exc:
            return Failure(request, message, type(exc).__name__, str(exc)[:500], "compute_failed")
        try:
            encode_batch([request], now_ms, columns, check_names({k: [v] for k, v in values.items()}))
        except Exception as exc:
            return Failure(request, message, type(exc).__name__, str(exc)[:500], "unencodable")
        return None

    def _split(self, batch: Decoded, columns: MetricColumns, spans: list[Span], now_ms: int) -> Outcome:
        n = len(batch.requests)
        failed_count = [0] * n
        fatal: dict[int, BaseException] = {}
        for start, end, caller, error in spans:
            for i in range(start, end):
                failed_count[i] += 1
                if caller.required or failed_count[i] == len(self.callers):
                    fatal.setdefault(i, error)
        keep = [i for i in range(n) if i not in fatal]
        failures = [
            Failure(batch.requests[i], batch.messages[i], type(err).__name__, str(err)[:500])
            for i, err in sorted(fatal.items())
        ]
        return self._encode(batch, keep, columns, now_ms, failures)
