"""The processor killed at each of its crash points (KCOLLECT_FAULT_AT) and restarted: every client ends
as exactly one row under FINAL, with the values it should have."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.steps.faults import EXIT_CODE
from tests.integration.pipeline import make_pipeline
from tests.integration.test_pipeline import check_rows

pytestmark = pytest.mark.integration

CLIENTS = 4000


@pytest.mark.parametrize("point", ["after_poll", "after_fetch", "after_produce", "before_commit"])
def test_processor_crash_then_restart_loses_nothing(
    kafka_bootstrap: str, clickhouse_url: str, unique_name: str, tmp_path: Path, point: str
) -> None:
    pipe = make_pipeline(
        kafka_bootstrap,
        clickhouse_url,
        unique_name,
        tmp_path,
        KCOLLECT_CONSUME_BATCH="200",
        KCOLLECT_COMMIT_INTERVAL_SECONDS="0.1",
        KCOLLECT_SIM_LATENCY_MS="20",  # one batch at a time, 20 of them over about a second:
        KCOLLECT_MAX_IN_FLIGHT_BATCHES="1",  # every point (and several commits) is reached 3 times
    )
    try:
        run_id = f"crash-{point.replace('_', '-')}"
        assert pipe.cli("enqueue", "--run-id", run_id, "--clients", str(CLIENTS)).returncode == 0
        pipe.start("sink")
        pipe.env["KCOLLECT_FAULT_AT"] = f"{point}:3"
        crashing = pipe.start("processor")
        assert crashing.wait(60) == EXIT_CODE, pipe.log("processor")
        del pipe.env["KCOLLECT_FAULT_AT"]
        pipe.procs.pop("processor")
        pipe.start("processor")
        assert pipe.wait_rows(run_id, CLIENTS, timeout=120) == CLIENTS
        check_rows(pipe, run_id, [str(i) for i in range(CLIENTS)])
    finally:
        pipe.kill_all()
