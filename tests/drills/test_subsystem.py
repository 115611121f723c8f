"""Drill: a subsystem down for a while (the brief says minutes; shortened to ``DRILL_SUBSYSTEM_OUTAGE``
seconds, default 30) behind ``kcollect simulate``; afterwards every client is stored or dead-lettered,
nothing is lost or duplicated, and the lag is back to zero."""

from __future__ import annotations

import json
import os
import time
import urllib.request
from pathlib import Path

import pytest

from bench.e2e import simulator_config
from tests.drills.kit import ClickHouse, check_run, drill_stack, enqueue, watched

CLIENTS = 20_000
OUTAGE = float(os.environ.get("DRILL_SUBSYSTEM_OUTAGE", "30"))


@pytest.mark.drill
def test_subsystem_down(tmp_path: Path, shared_clickhouse: ClickHouse) -> None:
    with drill_stack(tmp_path, shared_clickhouse) as stack:
        d = stack.deploy(f"sd{int(time.time()) % 100000}", KCOLLECT_SINK_BATCH_SECONDS="0.3")
        port_file = d.workdir / "sim.port"
        d.launch(
            "simulate",
            ["simulate", "--port", "0", "--latency-ms", "20", "--ready-file", str(port_file)],
            False,
        )
        deadline = time.monotonic() + 30
        while not port_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        port = int(port_file.read_text())
        d.env["KCOLLECT_PROCESSOR_CONFIG"] = str(simulator_config(d.workdir, port))
        d.launch("processor0", ["processor"])
        d.launch("sink", ["sink"])
        d.wait_ready("processor0", "sink")
        watch = watched(d)
        # Beta goes down first: the whole run meets the outage (a run of 20k takes ~1 s otherwise).
        control = {"subsystem": "beta", "outage_seconds": OUTAGE}
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/control", data=json.dumps(control).encode(), method="POST"
        )
        urllib.request.urlopen(request, timeout=5).read()
        started = time.monotonic()
        run_id = f"{d.name}-run"
        enqueue(d, run_id, CLIENTS)
        report = check_run(d, run_id, CLIENTS, watch, dead_letters=0)
        stats = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=5).read())
        statuses = dict(
            d.query(
                "SELECT status, count() FROM client_results FINAL WHERE run_id = %(r)s GROUP BY status",
                {"r": run_id},
            )
        )
        print(
            f"subsystem outage {OUTAGE:g} s: stored {report.stored} {statuses}, dead-lettered "
            f"{report.dead_lettered}, recovered {time.monotonic() - started:.1f} s after the run started; "
            f"simulator stats {stats}"
        )
        assert set(statuses) <= {"ok", "partial"}, statuses
        partial_without_beta = d.query(
            "SELECT count() FROM client_results FINAL WHERE run_id = %(r)s AND status = 'partial' "
            "AND NOT has(missing, 'load_0')",
            {"r": run_id},
        )[0][0]
        assert partial_without_beta == 0, "a partial result must name the metrics it misses"
        assert any(key.endswith(":outage") for key in stats.get("stats", stats)), stats
