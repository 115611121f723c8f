"""SIGTERM under load: the processor and the sink drain, exit 0 within the shutdown deadline, and the
same commands started again finish the run with every client stored (nothing lost)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.pipeline import make_pipeline

pytestmark = pytest.mark.integration
CLIENTS = 20000
DEADLINE = 10.0


def stop_timed(proc: subprocess.Popen[bytes]) -> tuple[int, float]:
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(DEADLINE * 3)
    return code, time.monotonic() - started


def test_sigterm_under_load_drains_and_resumes(
    kafka_bootstrap: str, clickhouse_url: str, unique_name: str, tmp_path: Path
) -> None:
    pipe = make_pipeline(
        kafka_bootstrap,
        clickhouse_url,
        unique_name,
        tmp_path,
        KCOLLECT_SIM_LATENCY_MS="100",  # slow subsystems, small calls: the run takes a while
        KCOLLECT_SUBSYSTEM_BATCH="100",
        KCOLLECT_CONSUME_BATCH="500",  # little in flight: most of the run is left for the restart
        KCOLLECT_MAX_IN_FLIGHT_BATCHES="2",
        KCOLLECT_SHUTDOWN_DEADLINE_SECONDS=str(DEADLINE),
        KCOLLECT_SESSION_TIMEOUT_MS="2000",
    )
    try:
        processor, sink = pipe.start("processor"), pipe.start("sink")
        pipe.wait_ready("processor", "sink")
        done = pipe.cli("enqueue", "--run-id", "drain-1", "--clients", f"0-{CLIENTS - 1}", "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["enqueued"] == CLIENTS
        stored = pipe.wait_rows("drain-1", 1, timeout=60)
        assert 0 < stored < CLIENTS, "the run must still be under way when SIGTERM comes"

        code, seconds = stop_timed(processor)
        assert code == 0, pipe.log("processor")
        assert seconds < DEADLINE * 2 + 5, f"processor took {seconds:.1f} s to drain"
        code, seconds = stop_timed(sink)
        assert code == 0, pipe.log("sink")
        assert seconds < DEADLINE * 2 + 5, f"sink took {seconds:.1f} s to drain"
        pipe.procs.clear()
        partial = pipe.wait_rows("drain-1", CLIENTS, timeout=0.5)
        assert partial < CLIENTS, "nothing was left for the restart: load the services more"

        pipe.start("processor")  # the same commands again pick up the committed offsets
        pipe.start("sink")
        assert pipe.wait_rows("drain-1", CLIENTS, timeout=120) == CLIENTS
        distinct = pipe.query("SELECT uniqExact(client_id) FROM client_results WHERE run_id = 'drain-1'")
        assert distinct[0][0] == CLIENTS
        assert pipe.stop("processor") == 0
        assert pipe.stop("sink") == 0
    finally:
        pipe.kill_all()
