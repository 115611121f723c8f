"""An expired backlog (an old cycle after an outage): `kcollect enqueue --deadline` writes the deadline
into the manifest and every request, and the processor dead-letters every expired request (reason
expired) at full speed and keeps running: the bad-deploy guard does not count expiry."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from producers.enqueue.enqueue import enqueue_run
from producers.enqueue.sources import RangeSource
from streams.kafka.dead_letter import header_map
from streams.runs.identity import Deadline
from streams.runs.manifests import read_manifest
from tests.integration.pipeline import make_pipeline
from tests.integration.processors.processor.test_kit import read_topic, start_processor

pytestmark = pytest.mark.integration
BACKLOG = 20_000  # twenty times the guard's window


def test_an_expired_backlog_is_dead_lettered_without_stopping_the_processor(
    kafka_bootstrap: str, clickhouse_url: str, unique_name: str, tmp_path: Path
) -> None:
    pipe = make_pipeline(
        kafka_bootstrap, clickhouse_url, unique_name, tmp_path, KCOLLECT_CONSUME_BATCH="1000"
    )
    try:
        two_hours_ago = int(time.time() * 1000) - 7_200_000
        summary = enqueue_run(
            pipe.settings,
            "old-1",
            RangeSource(0, BACKLOG - 1),
            two_hours_ago,
            deadline=Deadline(after_ms=3_600_000),
        )
        assert summary.enqueued == BACKLOG and summary.deadline_ms == two_hours_ago + 3_600_000
        manifest = read_manifest(pipe.settings, "old-1")
        assert manifest is not None and manifest.deadline_ms == two_hours_ago + 3_600_000
        processor = start_processor(pipe, "proc")
        pipe.wait_ready("proc")
        dead = read_topic(pipe, "requests.dlq", lambda got: len(got) >= BACKLOG, timeout=120)
        assert len(dead) == BACKLOG
        reasons = Counter(header_map(msg.headers())["reason"] for msg in dead)
        assert reasons == {"expired": BACKLOG}
        assert {orjson.loads(msg.value())["deadline_ms"] for msg in dead} == {two_hours_ago + 3_600_000}
        assert processor.poll() is None, pipe.log("proc")  # still running: nothing tripped
        assert read_topic(pipe, "results", timeout=2) == []
        assert pipe.stop("proc") == 0
    finally:
        pipe.kill_all()
