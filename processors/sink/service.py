"""The sink service: results in, ClickHouse rows out, exactly one row per client and run under FINAL.

Chain: ResultDecoder -> WindowStep (per-partition windows, closed together by N rows / B bytes /
T seconds / idleness into one group) -> InsertStep (two worker threads: one insert per group and
month, bisect on data errors, retry with backoff through outages) -> CommitOffsets. Offsets are
committed only after ClickHouse acknowledged the insert that holds them (and the dead letters of that
range were confirmed). While ClickHouse is down the insert step rejects new windows, so the stream
processor pauses the partitions and keeps polling. A crash anywhere re-delivers at most the
uncommitted windows; their rows replace their twins (``client_results`` is a ReplacingMergeTree keyed
by run and client). See docs/sink.md.
"""

from __future__ import annotations

import gc
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from confluent_kafka import Message

from processors.sink.insert import ClickHouseHealth, SinkStats, WindowWriter
from processors.sink.insert_step import InsertStep
from processors.sink.steps import ResultDeadLetters, ResultDecoder, WindowStep
from processors.sink.windowing import WindowLimits
from schemas.topics import RESULTS, RESULTS_DLQ
from streams.kafka.dead_letter import MAX_ORIGINAL_BYTES
from streams.kafka.producer import BatchProducer
from streams.settings.model import Settings
from streams.steps.commit import Commit, CommitOffsets
from streams.steps.service import run_consumer_service
from streams.steps.strategy import ProcessingStep, TransformStep

log = logging.getLogger(__name__)

__all__ = ["SinkStats", "build_sink_chain", "run_sink"]

# Insert threads (each with its own connection): two let the server write one insert while the next
# is serialized; more only add parts and memory on a small machine.
INSERT_WORKERS = 2


def tune_for_throughput() -> None:
    """Process settings for the sink's hot path.

    - The cyclic GC: decoding allocates three dicts per record and none of them forms a cycle, yet
      with the default thresholds the collector runs every 700 allocations and walks the growing
      heap (measured: ``orjson.loads`` of 200k results 1.3 s with it, 0.7 s without). Objects alive
      at start are frozen out of collections and the young generation is collected 100x less often.
    - clickhouse-driver logs a traceback for every refused connection; the sink logs outages itself,
      once per state change, so the driver's connection warnings are silenced.
    """
    gc.freeze()
    gc.set_threshold(70_000, 20, 20)
    logging.getLogger("clickhouse_driver.connection").setLevel(logging.ERROR)


def build_sink_chain(
    commit_offsets: Commit,
    settings: Settings,
    producer: BatchProducer,
    stats: SinkStats,
    dlq_value_limit: int = MAX_ORIGINAL_BYTES,
) -> ProcessingStep[list[Message]]:
    """ResultDecoder -> WindowStep -> InsertStep -> CommitOffsets."""
    commit = CommitOffsets(commit_offsets, settings.commit_interval_seconds, producer.poll, max_waiting=64)
    dead_letters = ResultDeadLetters(
        producer, RESULTS_DLQ.name(settings.topic_prefix), stats, dlq_value_limit
    )
    writers = [WindowWriter(settings.clickhouse(), stats, preferred=i) for i in range(INSERT_WORKERS)]
    insert = InsertStep(writers, ClickHouseHealth(stats), dead_letters.refused_rows, commit)
    limits = WindowLimits(
        settings.sink_batch_rows,
        settings.sink_batch_bytes,
        settings.sink_batch_seconds,
        idle_rows=settings.sink_idle_rows,
        idle_seconds=settings.sink_idle_seconds,
        grouped=not settings.clickhouse().cluster,  # a cluster's block deduplication needs stable cuts
    )
    window = WindowStep(limits, insert, stats)
    return TransformStep(ResultDecoder(dead_letters, stats).decode, window)


def run_sink(settings: Settings, ready_file: Path | None = None) -> dict[str, Any]:
    """The `kcollect sink` service: runs until SIGTERM/SIGINT."""
    from streams.clickhouse.client import check_server
    from streams.kafka.admin import require_topics
    from streams.kafka.topic_limits import DEAD_LETTER_HEADERS, TopicLimits

    results_topic = RESULTS.name(settings.topic_prefix)
    dlq_topic = RESULTS_DLQ.name(settings.topic_prefix)
    require_topics(settings, [results_topic, dlq_topic])
    limits = TopicLimits.read(settings, [dlq_topic])
    dlq_value_limit = limits.value_limit(dlq_topic, DEAD_LETTER_HEADERS)
    tune_for_throughput()
    if not check_server(settings.clickhouse()):  # TLS or login refused: exit 5 at once
        log.warning(
            "ClickHouse at %s does not answer yet: results wait in Kafka", settings.clickhouse().url()
        )
    producer = BatchProducer(settings, **limits.producer_config())
    stats = SinkStats()
    try:
        loop_stats = run_consumer_service(
            settings,
            settings.sink_group,
            [results_topic],
            lambda commit: build_sink_chain(commit, settings, producer, stats, dlq_value_limit),
            ready_file,
            batch_size=settings.sink_consume_batch,
        )
    finally:
        producer.flush(settings.shutdown_deadline_seconds)
    return asdict(loop_stats) | asdict(stats)
