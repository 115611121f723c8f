"""Drills on ClickHouse: stopped for a minute (``DRILL_CLICKHOUSE_OUTAGE`` seconds, default 60), killed
with -9 while the sink inserts, and network faults between the sink and ClickHouse (the fault proxy)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from kcollect.localstack.process import stop_process
from tests.drills.kit import drill_stack, start_run

CLIENTS = 30_000
OUTAGE = float(os.environ.get("DRILL_CLICKHOUSE_OUTAGE", "60"))
SLOW = {"KCOLLECT_SIM_LATENCY_MS": "50", "KCOLLECT_SINK_BATCH_SECONDS": "0.3"}


@pytest.mark.drill
def test_clickhouse_stopped_for_a_minute(tmp_path: Path) -> None:
    with drill_stack(tmp_path, None, own_clickhouse=True) as stack:
        run = start_run(stack, f"cs{int(time.time()) % 100000}", CLIENTS, CLIENTS // 5, env=SLOW)
        stop_process(stack.clickhouse.record)
        time.sleep(OUTAGE)
        stack.clickhouse.start()
        run.check()
        assert run.d.procs["sink"].poll() is None, "the sink must wait for ClickHouse, not die"


@pytest.mark.drill
def test_clickhouse_kill_9_during_inserts(tmp_path: Path) -> None:
    with drill_stack(tmp_path, None, own_clickhouse=True) as stack:
        # big, frequent inserts: a kill at a random moment most likely lands inside one
        name = f"ck{int(time.time()) % 100000}"
        run = start_run(stack, name, CLIENTS, 1, env={"KCOLLECT_SINK_BATCH_SECONDS": "0.2"})
        stack.clickhouse.kill(signal.SIGKILL)
        time.sleep(2)
        stack.clickhouse.start()
        run.check()


@pytest.mark.drill
def test_network_faults_in_front_of_clickhouse(tmp_path: Path) -> None:
    with drill_stack(tmp_path, None, clickhouse_proxy=True) as stack:
        proxy = stack.clickhouse.proxy
        assert proxy is not None
        run = start_run(stack, f"cn{int(time.time()) % 100000}", CLIENTS, CLIENTS // 5, env=SLOW)
        proxy.set_mode("delay", delay_ms=300)
        time.sleep(3)
        proxy.set_mode("reset")
        time.sleep(2)
        proxy.set_mode("blackhole")
        time.sleep(10)
        proxy.set_mode("drop")
        time.sleep(2)
        proxy.set_mode("pass")
        run.check()
