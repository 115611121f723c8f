"""Drills on the broker: kill -9 and restart on persistent storage (Apache Kafka's disk, or Tansu on s3
on moto: nothing may be lost), a restart that lost every topic, record and offset (Tansu's memory storage,
or Kafka's data folder wiped: the checker must report it, never a completed run), and network faults
between every client and the broker (the fault proxy, advertised as the broker)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from processors.processor.subsystems.simulated import simulated_check
from producers.enqueue.sources import RangeSource
from streams.runs.checker import verify_run
from streams.runs.status import run_status
from tests.drills.kit import ClickHouse, drill_stack, start_run

CLIENTS = 30_000
SLOW = {"KCOLLECT_SIM_LATENCY_MS": "50", "KCOLLECT_SINK_BATCH_SECONDS": "0.3"}


@pytest.mark.drill
def test_broker_kill_9_and_restart_on_persistent_storage(
    tmp_path: Path, shared_clickhouse: ClickHouse
) -> None:
    with drill_stack(tmp_path, shared_clickhouse, persistent=True) as stack:
        run = start_run(stack, f"bp{int(time.time()) % 100000}", CLIENTS, CLIENTS // 4, env=SLOW)
        stack.broker.kill()
        time.sleep(3)
        stack.broker.start()
        run.check(dead_letters=0)
        assert all(p.poll() is None for p in run.d.procs.values()), "services must ride out a broker restart"


@pytest.mark.drill
def test_broker_restart_on_memory_is_reported_as_loss(tmp_path: Path, shared_clickhouse: ClickHouse) -> None:
    with drill_stack(tmp_path, shared_clickhouse) as stack:
        # slower than SLOW: on a loaded machine a 50 ms run was seen stored whole before the first poll
        # saw a quarter of it, leaving nothing to lose
        env = SLOW | {"KCOLLECT_SIM_LATENCY_MS": "300", "KCOLLECT_SINK_BATCH_ROWS": "2000"}
        run = start_run(stack, f"bm{int(time.time()) % 100000}", CLIENTS, CLIENTS // 10, env=env)
        d, run_id = run.d, run.run_id
        run.watch.stop()  # the offsets are gone with the broker's memory: nothing to watch
        stack.broker.kill()
        stored_at_kill = d.stored(run_id)
        assert stored_at_kill < CLIENTS, "the run finished before the broker died: nothing could be lost"
        stack.broker.wipe()
        stack.broker.start()  # every topic, record and offset is gone
        assert d.cli("topics", "create").returncode == 0
        time.sleep(5)
        report = verify_run(
            d.settings, run_id, expected=RangeSource(0, CLIENTS - 1), value_check=simulated_check
        )
        assert not report.ok, report.as_dict()
        assert report.lost > 0 and report.manifest_state == "no-manifest", report.as_dict()
        assert not run_status(d.settings, run_id).complete
        done = d.cli("runs", "verify", run_id, "--clients", str(CLIENTS), "--json")
        assert done.returncode == 1, done.stdout + done.stderr


@pytest.mark.drill
def test_network_faults_in_front_of_the_broker(tmp_path: Path, shared_clickhouse: ClickHouse) -> None:
    with drill_stack(tmp_path, shared_clickhouse, broker_proxy=True) as stack:
        proxy = stack.broker.proxy
        assert proxy is not None
        run = start_run(stack, f"bn{int(time.time()) % 100000}", CLIENTS, CLIENTS // 5, env=SLOW)
        proxy.set_mode("delay", delay_ms=200)
        time.sleep(3)
        proxy.set_mode("reset")  # every open connection gets an RST, and every new one for 2 s
        time.sleep(2)
        proxy.set_mode("blackhole")
        time.sleep(8)  # longer than the session timeout (3 s)
        proxy.set_mode("drop")
        time.sleep(3)
        proxy.set_mode("pass")
        run.check(dead_letters=0)
