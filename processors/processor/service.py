"""The processor service: requests in, results out.

Chain (one consumed batch at a time; its offsets travel with it and are committed last):
  DecodeRequests -> FetchAndCompute (RunTaskInLoop: many batches in flight on one asyncio loop)
  -> ProduceOutcome (results; failures to the retry topic or the DLQ) -> CommitOffsets
The processor consumes the requests topic and the retry topic; a retry record waits in the
``RetryGate`` (its partition paused) until it is due. See docs/processor.md.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from confluent_kafka import Message

from processors.processor.caller import SubsystemCaller
from processors.processor.config import (
    ProcessorConfig,
    SubsystemConfig,
    import_path,
    load_config,
    resolve_compute,
)
from processors.processor.dead_letters import FailureGuard, RequestDeadLetters
from processors.processor.fetcher import Decoded, Fetcher, Outcome
from processors.processor.retry_gate import RetryGate
from processors.processor.steps import OutcomeCounts, ProduceOutcome, RequestDecoder, Topics
from processors.processor.subsystems.simulated import SimulatedSubsystem
from schemas.topics import REQUESTS, REQUESTS_DLQ, REQUESTS_RETRY, RESULTS
from streams.kafka.producer import BatchProducer
from streams.kafka.topic_limits import DEAD_LETTER_HEADERS, TopicLimits
from streams.lag.gate import LagGate
from streams.observability import metrics as m
from streams.settings.model import Settings
from streams.steps.commit import Commit, CommitOffsets
from streams.steps.service import run_consumer_service
from streams.steps.strategy import Batch, LoopThread, ProcessingStep, RunTaskInLoop, TransformStep

log = logging.getLogger(__name__)
RETRY_WAIT_MARGIN_MS = 60_000  # a retry record waits at most the longest retry delay plus this


def make_client(config: SubsystemConfig, settings: Settings) -> Any:
    """The subsystem client a config entry names."""
    if config.kind == "simulated":
        return SimulatedSubsystem(config.name, config.metrics, config.latency_ms / 1000)
    if config.kind == "http":
        from processors.processor.subsystems.http_api import HttpSubsystem

        assert config.url is not None
        return HttpSubsystem(
            config.name, config.metrics, config.url, config.max_concurrency, config.max_response_bytes
        )
    if config.kind == "sql":
        from processors.processor.subsystems.sql_query import SqlSubsystem
        from streams.clickhouse.client import check_server

        assert config.query is not None
        check_server(settings.clickhouse())  # TLS or login refused: exit 5 at start, not a DLQ of fetches
        return SqlSubsystem(
            config.name, config.metrics, config.query, settings.clickhouse(), config.max_concurrency
        )
    assert config.factory is not None
    return import_path(config.factory)(config)


def make_fetcher(config: ProcessorConfig, settings: Settings) -> Fetcher:
    callers = [SubsystemCaller(make_client(sub, settings), sub) for sub in config.subsystems]
    return Fetcher(callers, resolve_compute(config.compute))


class Processor:
    """Everything one processor process shares across chains (rebalances build a new chain)."""

    def __init__(
        self,
        settings: Settings,
        config: ProcessorConfig,
        producer: BatchProducer,
        limits: TopicLimits | None = None,
    ) -> None:
        prefix = settings.topic_prefix
        self.settings = settings
        self.config = config
        self.producer = producer
        self.topics = Topics(RESULTS.name(prefix), REQUESTS_RETRY.name(prefix), REQUESTS_DLQ.name(prefix))
        self.limits = limits or TopicLimits({}, settings.max_message_bytes)
        self.guard = FailureGuard(settings.processor_dlq_guard_window, settings.processor_dlq_guard_ratio)
        self.dead = RequestDeadLetters(
            producer, self.topics.dlq, self.limits.value_limit(self.topics.dlq, DEAD_LETTER_HEADERS)
        )
        self.gate = RetryGate(self.topics.retry, max_wait_ms=config.retry.max_delay_ms + RETRY_WAIT_MARGIN_MS)
        self.decoder = RequestDecoder(self.dead, self.guard, self.gate)
        self.fetcher = make_fetcher(config, settings)
        self.loop = LoopThread("kcollect-fetch")
        self._inline_loop = asyncio.new_event_loop()
        self.counts = OutcomeCounts()  # shared by every chain's produce step

    def chain(self, commit_offsets: Commit) -> ProcessingStep[list[Message]]:
        """DecodeRequests -> FetchAndCompute -> ProduceOutcome -> CommitOffsets."""
        settings = self.settings
        commit = CommitOffsets(
            commit_offsets,
            settings.commit_interval_seconds,
            self.producer.poll,
            max_waiting=settings.max_in_flight_batches * 2,
        )
        produce = ProduceOutcome(
            self.producer,
            self.topics,
            self.dead,
            self.guard,
            self.config.retry,
            commit,
            self.counts,
            self.limits.value_limit(self.topics.results),
        )
        fetch: ProcessingStep[Any]
        if all(caller.inline for caller in self.fetcher.callers):
            fetch = TransformStep(self._fetch_inline, produce)  # nothing to wait for: no thread hop
        else:
            fetch = RunTaskInLoop(
                self.fetcher.process,
                produce,
                self.loop,
                settings.max_in_flight_batches,
                m.PROCESSOR_IN_FLIGHT.set,
            )
        return TransformStep(self.decoder, fetch)

    def _fetch_inline(self, batch: Batch[Decoded]) -> Batch[Outcome]:
        """Run the fetch coroutine to completion here: every subsystem is in-process and never waits."""
        return batch.replace(self._inline_loop.run_until_complete(self.fetcher.process(batch.payload)))

    def stats(self) -> dict[str, Any]:
        totals = asdict(self.counts)
        decoder = self.decoder
        return totals | {"decoded": decoder.decoded, "invalid": decoder.invalid, "expired": decoder.expired}

    def close(self) -> None:
        for caller in self.fetcher.callers:
            aclose = getattr(caller.client, "aclose", None)
            if aclose is not None:
                try:
                    self.loop.submit(aclose()).result(5)
                except Exception as exc:  # closing is best effort
                    log.debug("closing %s: %s", caller.name, exc)
            caller.close()
        self.loop.stop()
        self._inline_loop.close()


def results_lag_gate(settings: Settings) -> LagGate | None:
    """The gate on the sink group's lag on the results topic (KCOLLECT_RESULTS_LAG_*); None when off.
    The settings model checks that the low mark is below the high one."""
    if settings.results_lag_high == 0:
        return None
    return LagGate(
        settings,
        settings.sink_group,
        RESULTS.name(settings.topic_prefix),
        settings.results_lag_high,
        settings.results_lag_low,
        interval=settings.results_lag_interval_seconds,
    )


def consumer_extra(settings: Settings) -> dict[str, Any]:
    return {
        "partition.assignment.strategy": settings.processor_assignment_strategy,
        "instance_id": settings.processor_group_instance_id,
    }


def run_processor(settings: Settings, ready_file: Path | None = None) -> dict[str, Any]:
    """The `kcollect processor` service: runs until SIGTERM/SIGINT (or the DLQ guard trips)."""
    from streams.kafka.admin import require_topics

    config = load_config(
        Path(settings.processor_config) if settings.processor_config else None,
        settings.sim_latency_ms,
        settings.subsystem_batch,
    )
    prefix = settings.topic_prefix
    topics = [REQUESTS.name(prefix), REQUESTS_RETRY.name(prefix)]
    outputs = [RESULTS.name(prefix), REQUESTS_RETRY.name(prefix), REQUESTS_DLQ.name(prefix)]
    require_topics(settings, [*topics, *outputs])
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per call otherwise
    limits = TopicLimits.read(settings, outputs)
    producer = BatchProducer(settings, **limits.producer_config())
    processor = Processor(settings, config, producer, limits)
    results_gate = results_lag_gate(settings)  # None when KCOLLECT_RESULTS_LAG_HIGH is 0
    try:
        loop_stats = run_consumer_service(
            settings,
            settings.processor_group,
            topics,
            processor.chain,
            ready_file,
            processor.gate,
            results_gate.paused if results_gate is not None else None,
            **consumer_extra(settings),
        )
    finally:
        remaining = producer.flush(settings.shutdown_deadline_seconds)
        if remaining:
            log.error("%d record(s) not delivered at exit; their requests stay uncommitted", remaining)
        processor.close()
        if results_gate is not None:
            results_gate.close()
    return asdict(loop_stats) | processor.stats()
