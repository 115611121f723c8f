"""One subsystem's call policy: bounded concurrency, timeout, retries with backoff, circuit breaker.

``SubsystemCaller.call(requests)`` returns the subsystem's columns, or raises the last
``FetchError`` (``BreakerOpen`` when the breaker refused the call). It runs on the processor's event
loop: async subsystems are awaited, blocking ones run in a thread, fast synchronous ones inline.

A blocking subsystem has its own thread pool (``2 x max_concurrency`` threads: a call that timed out
keeps its thread until it returns, and must not starve the next calls), never asyncio's small shared
default executor. Its timeout counts the call only, from the moment a thread runs it; waiting for a
free thread (only when earlier calls hang past their timeout) is bounded by the timeout too and
fails as ``CallTimeout`` saying no thread was free.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Sequence
from typing import Any

from processors.processor.breaker import STATE_VALUES, BreakerOpen, CircuitBreaker, State
from processors.processor.config import SubsystemConfig
from processors.processor.retry import Backoff, FetchError
from processors.processor.subsystems.protocol import MetricColumns, Record
from streams.observability import metrics as m


class CallTimeout(FetchError):
    """The call took longer than the subsystem's timeout."""


class SubsystemCaller:
    """Wraps one subsystem client with its policy from ``SubsystemConfig``."""

    def __init__(self, client: Any, config: SubsystemConfig) -> None:
        self.client = client
        self.name = config.name
        self.metrics = tuple(config.metrics)
        self.batch_size = config.batch_size
        self.required = config.required
        self._timeout = config.timeout_seconds
        self._retries = config.retries
        self._backoff = Backoff(config.backoff_base_seconds, config.backoff_max_seconds)
        self._sem: asyncio.Semaphore | None = None
        self._concurrency = config.max_concurrency
        self.breaker = CircuitBreaker(
            config.breaker.failure_threshold,
            config.breaker.reset_seconds,
            config.breaker.half_open_probes,
            on_change=self._breaker_changed,
        )
        self._is_async = hasattr(client, "fetch_async")
        self._blocking = bool(getattr(client, "blocking", False))
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        if self._blocking and not self._is_async:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                2 * config.max_concurrency, thread_name_prefix=f"kcollect-{config.name}"
            )
        self.inline = not self._is_async and not self._blocking  # never waits: may run on any thread
        self._latency = m.PROCESSOR_FETCH_SECONDS.labels(self.name)
        self._batch = m.PROCESSOR_FETCH_BATCH.labels(self.name)
        m.PROCESSOR_BREAKER_STATE.labels(self.name).set(0)

    def _breaker_changed(self, state: State) -> None:
        m.PROCESSOR_BREAKER_STATE.labels(self.name).set(STATE_VALUES[state])

    async def _in_thread(self, requests: Sequence[Record]) -> tuple[MetricColumns, float]:
        """Run the blocking call on this subsystem's pool; (columns, when the call started)."""
        assert self._pool is not None
        loop = asyncio.get_running_loop()
        running = asyncio.Event()
        started = [0.0]

        def call() -> MetricColumns:
            started[0] = time.monotonic()
            loop.call_soon_threadsafe(running.set)
            return self.client.fetch(requests)  # type: ignore[no-any-return]

        future = loop.run_in_executor(self._pool, call)
        try:
            await asyncio.wait_for(running.wait(), self._timeout)
        except TimeoutError:
            future.cancel()
            raise CallTimeout(f"no free thread within {self._timeout:g} s (earlier calls hang)") from None
        left = self._timeout - (time.monotonic() - started[0])
        try:
            return await asyncio.wait_for(future, max(left, 0.0)), started[0]
        except TimeoutError:
            raise CallTimeout(f"no answer in {self._timeout:g} s") from None

    async def _invoke(self, requests: Sequence[Record]) -> tuple[MetricColumns, float]:
        if self._pool is not None:
            return await self._in_thread(requests)
        started = time.monotonic()
        if self._is_async:
            try:
                result: MetricColumns = await asyncio.wait_for(
                    self.client.fetch_async(requests), self._timeout
                )
            except TimeoutError:
                raise CallTimeout(f"no answer in {self._timeout:g} s") from None
            return result, started
        return self.client.fetch(requests), started

    async def _attempt(self, requests: Sequence[Record]) -> MetricColumns:
        if self._sem is None:
            self._sem = asyncio.Semaphore(self._concurrency)
        async with self._sem:
            started = time.monotonic()
            try:
                columns, started = await self._invoke(requests)
            except FetchError:
                raise
            except Exception as exc:
                raise FetchError(f"{type(exc).__name__}: {exc}") from None
            finally:
                self._latency.observe(time.monotonic() - started)
        return check_columns(columns, self.metrics, len(requests))

    def close(self) -> None:
        """Let the pool's threads end (a hung call keeps its thread until it returns)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    async def _await_probe(self) -> bool:
        """Half-open with the probe out: wait (at most the call timeout) for its verdict."""
        deadline = time.monotonic() + self._timeout
        while self.breaker.state == "half_open" and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
            if self.breaker.allow():
                return True
        return self.breaker.allow()

    async def call(self, requests: Sequence[Record]) -> MetricColumns:
        """The metric columns for ``requests``; raises FetchError (or BreakerOpen) once retries are spent."""
        self._batch.observe(len(requests))
        attempt = 0
        while True:
            if not self.breaker.allow() and not await self._await_probe():
                m.PROCESSOR_FETCH_CALLS.labels(self.name, "breaker_open").inc()
                raise BreakerOpen(f"circuit breaker of {self.name} is open")
            try:
                columns = await self._attempt(requests)
            except FetchError as exc:
                self.breaker.record_failure()
                outcome = "timeout" if isinstance(exc, CallTimeout) else "error"
                m.PROCESSOR_FETCH_CALLS.labels(self.name, outcome).inc()
                if not exc.retryable or attempt >= self._retries:
                    raise
                attempt += 1
                m.PROCESSOR_RETRIES.labels(self.name).inc()
                await asyncio.sleep(self._backoff.delay(attempt, exc.retry_after))
                continue
            self.breaker.record_success()
            m.PROCESSOR_FETCH_CALLS.labels(self.name, "ok").inc()
            return columns


def check_columns(columns: MetricColumns, metrics: tuple[str, ...], n: int) -> MetricColumns:
    """Every metric a column of ``n`` values (a metric the subsystem left out becomes all missing)."""
    if type(columns) is not dict:
        raise FetchError(f"subsystem returned {type(columns).__name__}, not a dict of columns")
    out: MetricColumns = {}
    for metric in metrics:
        column = columns.get(metric)
        if column is None:
            out[metric] = [None] * n
        elif len(column) != n:
            raise FetchError(f"metric {metric!r}: {len(column)} values for {n} clients")
        else:
            out[metric] = column
    return out
