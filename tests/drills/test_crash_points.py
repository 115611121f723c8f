"""Drill: kill at every crash point (``KCOLLECT_FAULT_AT=point:2``, ``os._exit``: no flush, no commit),
restart the service, and prove nothing was lost or duplicated under FINAL (20k clients each).

Sink points come from ``streams.steps.faults.POINTS``; processor points that ``streams.steps.faults``
does not know yet are skipped with the reason (the lead wires them).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bench.deployment import Deployment
from streams.steps import faults
from tests.drills.kit import ClickHouse, check_run, drill_stack, enqueue, watched

CLIENTS = 20_000
SINK_POINTS = ("before_insert", "after_insert", "before_commit")
PROCESSOR_POINTS = ("after_poll", "after_fetch", "after_produce", "before_commit")
MATRIX = [("sink", p) for p in SINK_POINTS] + [("processor", p) for p in PROCESSOR_POINTS]


def wait_exit_or_stored(
    d: Deployment, name: str, run_id: str, clients: int, timeout: float = 60, grace: float = 5
) -> int | None:
    """The exit code of ``name`` once it exits; None when the whole run got stored first and the
    process still runs ``grace`` seconds later (a run's last commits come after its last inserts, so
    the sink may reach ``before_commit`` only once every row is stored)."""
    deadline = time.monotonic() + timeout
    proc = d.procs[name]
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return proc.returncode
        if d.stored(run_id) >= clients:
            deadline = min(deadline, time.monotonic() + grace)
        time.sleep(0.2)
    return proc.poll()


@pytest.mark.drill
@pytest.mark.ci_drill
@pytest.mark.parametrize(("service", "point"), MATRIX, ids=[f"{s}-{p}" for s, p in MATRIX])
def test_kill_at_crash_point(tmp_path: Path, shared_clickhouse: ClickHouse, service: str, point: str) -> None:
    if point not in faults.POINTS:
        pytest.skip(f"crash point {point!r} is not in streams.steps.faults.POINTS yet")
    with drill_stack(tmp_path, shared_clickhouse) as stack:
        name = f"cp{service[0]}{point.replace('_', '')}"[:20] + str(int(time.time()) % 10000)
        d = stack.deploy(
            name,
            KCOLLECT_SINK_BATCH_SECONDS="0.3",
            KCOLLECT_SINK_BATCH_ROWS="4000",
            KCOLLECT_COMMIT_INTERVAL_SECONDS="0.2",
            KCOLLECT_SIM_LATENCY_MS="20",  # the run lasts a few seconds: every point is reached twice
        )
        target = "processor0" if service == "processor" else "sink"
        fault = {"KCOLLECT_FAULT_AT": f"{point}:2"}
        d.launch("processor0", ["processor"], env=fault if service == "processor" else None)
        d.launch("sink", ["sink"], env=fault if service == "sink" else None)
        d.wait_ready("processor0", "sink")
        watch = watched(d)
        run_id = f"{name}-run"
        enqueue(d, run_id, CLIENTS)
        code = wait_exit_or_stored(d, target, run_id, CLIENTS)
        if code is None and service == "processor":
            pytest.skip(f"{point} is known but never reached in the processor (not wired there)")
        assert code == faults.EXIT_CODE, f"{target} did not die at {point}: {code}; {d.log(target)[-1500:]}"
        d.procs.pop(target)
        d.launch(target, [service])  # the same service, no fault
        d.wait_ready(target)
        check_run(d, run_id, CLIENTS, watch, dead_letters=0)
