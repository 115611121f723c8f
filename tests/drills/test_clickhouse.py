"""Drills on ClickHouse: stopped for a minute (``DRILL_CLICKHOUSE_OUTAGE`` seconds, default 60), killed
with -9 while an insert of the sink is under way (seen in ``system.processes``: the kill lands inside
it, not by chance), and network faults between the sink and ClickHouse (the fault proxy)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from clickhouse_driver import Client

from kcollect.localstack.ports import LOOPBACK
from kcollect.localstack.process import stop_process
from tests.drills.kit import ClickHouse, drill_stack, start_run

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
        run.check(dead_letters=0)
        assert run.d.procs["sink"].poll() is None, "the sink must wait for ClickHouse, not die"


def wait_insert_under_way(ch: ClickHouse, timeout: float = 60) -> str:
    """The text of an INSERT into client_results that ClickHouse is executing, once there is one (asked
    on the server's own port, not through the proxy that slows the sink's inserts down)."""
    client = Client(host=LOOPBACK, port=ch.record.port)
    sql = (
        "SELECT query FROM system.processes "
        "WHERE startsWith(query, 'INSERT INTO') AND position(query, 'client_results') > 0"
    )
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            rows = client.execute(sql)
            if rows:
                return str(rows[0][0])
            time.sleep(0.01)
    finally:
        client.disconnect()
    raise AssertionError(f"no insert under way within {timeout} s")


@pytest.mark.drill
def test_clickhouse_kill_9_during_inserts(tmp_path: Path) -> None:
    with drill_stack(tmp_path, None, clickhouse_proxy=True) as stack:
        proxy = stack.clickhouse.proxy
        assert proxy is not None
        name = f"ck{int(time.time()) % 100000}"
        # about 15 s of work, stored in windows of 0.2 s: one insert holds all the sink has (the windows
        # close together), so with the run at full speed the first insert could store it whole and
        # leave no insert to kill ClickHouse during
        slow = {"KCOLLECT_SINK_BATCH_SECONDS": "0.2", "KCOLLECT_SIM_LATENCY_MS": "50"}
        run = start_run(stack, name, CLIENTS, 1, env=slow)
        proxy.set_mode("delay", delay_ms=200)  # an insert's blocks trickle in: it stays under way
        query = wait_insert_under_way(stack.clickhouse)
        stack.clickhouse.kill(signal.SIGKILL)  # while that insert is under way on the server
        proxy.set_mode("pass")
        time.sleep(2)
        stack.clickhouse.start()
        report = run.check(dead_letters=0)
        print(f"killed during {query[:80]!r}; recovered in {report.recovery_seconds} s")


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
        run.check(dead_letters=0)
