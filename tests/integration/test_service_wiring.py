"""The services as deployed: health endpoints on KCOLLECT_HTTP_PORT, and the processor pausing on the
sink's lag on the results topic (end-to-end backpressure) and resuming once the sink catches up."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from streams.lag.probe import partition_lags
from tests.integration.pipeline import make_pipeline
from tests.integration.processors.processor.test_kit import free_port, metric_value, scrape

pytestmark = pytest.mark.integration


def http_status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def results_backlog(pipe_settings: object) -> int:
    lags = partition_lags(pipe_settings, pipe_settings.sink_group, f"{pipe_settings.topic_prefix}results")  # type: ignore[attr-defined, arg-type]
    return sum(item.lag for item in lags)


def test_processor_serves_health_and_pauses_on_results_lag(
    kafka_bootstrap: str, clickhouse_url: str, unique_name: str, tmp_path: Path
) -> None:
    port = free_port()
    pipe = make_pipeline(
        kafka_bootstrap,
        clickhouse_url,
        unique_name,
        tmp_path,
        KCOLLECT_HTTP_PORT=str(port),
        KCOLLECT_CONSUME_BATCH="100",
        KCOLLECT_RESULTS_LAG_HIGH="20",  # records: result batches of about 12 clients here
        KCOLLECT_RESULTS_LAG_LOW="5",
        KCOLLECT_RESULTS_LAG_INTERVAL_SECONDS="0.2",
    )
    try:
        pipe.start("processor")
        pipe.wait_ready("processor")
        assert http_status(port, "/healthz") == 200
        deadline = time.monotonic() + 10
        while http_status(port, "/readyz") != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert http_status(port, "/readyz") == 200
        assert pipe.cli("enqueue", "--run-id", "gate-1", "--clients", "3000").returncode == 0
        deadline = time.monotonic() + 30
        gate = {"consumergroup": f"{unique_name}-sink", "topic": f"{unique_name}.results"}
        while metric_value(scrape(port), "kcollect_lag_gate_paused", **gate) != 1.0:
            assert time.monotonic() < deadline, "the processor never paused on the results lag"
            time.sleep(0.2)
        time.sleep(2)  # paused: the backlog must stay bounded near the high mark
        backlog = results_backlog(pipe.settings)
        assert 20 <= backlog < 150, backlog  # unpaused, 3000 clients make about 250 records
        pipe.env["KCOLLECT_HTTP_PORT"] = "0"  # the sink serves no HTTP here: the port is the processor's
        pipe.start("sink")
        assert pipe.wait_rows("gate-1", 3000, timeout=120) == 3000
        deadline = time.monotonic() + 30  # the sink commits every second; then the lag drops to 0
        while metric_value(scrape(port), "kcollect_lag_gate_paused", **gate) != 0.0:
            assert time.monotonic() < deadline, "the processor never resumed"
            time.sleep(0.2)
        facts = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2).read())
        assert facts
        assert pipe.stop("processor") == 0
    finally:
        pipe.kill_all()
