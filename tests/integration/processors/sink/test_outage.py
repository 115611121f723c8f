"""ClickHouse stopped for ~20 s in the middle of a run: the sink pauses, logs the outage once, retries
with backoff and, once the server is back on the same port and folder, stores everything exactly once."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from kcollect.localstack.stack import free_port, start_clickhouse, stop_process
from tests.integration.pipeline import Pipeline, make_pipeline
from tests.integration.processors.sink.test_sink import counts, produce_results

pytestmark = pytest.mark.integration


def test_clickhouse_outage_pauses_then_resumes_with_nothing_lost(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    port = free_port()
    server = start_clickhouse(tmp_path / "ch", port)
    stats_file = tmp_path / "sink.stats.json"
    pipe: Pipeline | None = None
    try:
        pipe = make_pipeline(
            kafka_bootstrap,
            f"clickhouse://127.0.0.1:{port}/kcollect",
            unique_name,
            tmp_path,
            KCOLLECT_SESSION_TIMEOUT_MS="2000",
            KCOLLECT_SINK_BATCH_ROWS="1000",
            KCOLLECT_SINK_BATCH_SECONDS="0.5",
            KCOLLECT_CONSUME_BATCH="500",
        )
        produce_results(pipe, "out-1", range(5000))
        pipe.start("sink", "--stats-file", str(stats_file))
        assert pipe.wait_rows("out-1", 5000, timeout=60) == 5000
        stop_process(server)
        produce_results(pipe, "out-1", range(5000, 25000))
        time.sleep(20)
        assert pipe.procs["sink"].poll() is None, pipe.log("sink")
        server = start_clickhouse(tmp_path / "ch", port)
        assert pipe.wait_rows("out-1", 25000, timeout=60) == 25000
        assert pipe.stop("sink") == 0
        final, distinct, _ = counts(pipe, "out-1")
        assert final == distinct == 25000
        log = pipe.log("sink")
        assert log.count("ClickHouse insert failed") == 1, log
        assert log.count("ClickHouse is back") == 1, log
        assert "Traceback" not in log, log
        stats = json.loads(stats_file.read_text())
        assert stats["outages"] == 1 and stats["insert_failures"] >= 3
        assert stats["paused_seconds"] >= 5
    finally:
        if pipe is not None:
            pipe.kill_all()
        stop_process(server)
