"""Drills on a ClickHouse cluster (2 shards x 2 replicas + ZooKeeper, the ``local_cluster`` fixture):
a replica killed with -9 mid-run, ZooKeeper stopped for 30 s, a whole shard down for 30 s, the sink
killed between its insert into one shard and the commit, and a full 100,000-client run. Each ends with
the run checker (nothing lost, no duplicate under FINAL, no raw duplicate: every retried block was
identical and the replicas dropped it) and the cluster's own checks (both replicas of a shard hold the
same rows, each row on the shard that owns its client). ``DRILL_CLUSTER_OUTAGE`` sets the outages (s).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from streams.runs.checker import VerifyReport
from tests.drills.cluster_kit import (
    ClusterStack,
    check_placement,
    cluster_stack,
    local_rows,
    sync_replicas,
    wait_until,
)
from tests.drills.kit import DrillRun, enqueue, start_pipeline, start_run, watched

CLIENTS = 30_000
OUTAGE = float(os.environ.get("DRILL_CLUSTER_OUTAGE", "30"))
# about 15 s of work: a fault in the middle of it finds inserts still to come
SLOW = {"KCOLLECT_SIM_LATENCY_MS": "50", "KCOLLECT_SINK_BATCH_SECONDS": "0.3"}
# about a minute of work: an outage of 30 s ends before the run would
STRETCHED = SLOW | {"KCOLLECT_SIM_LATENCY_MS": "200", "KCOLLECT_SUBSYSTEM_BATCH": "50"}


def _name(tag: str) -> str:
    return f"{tag}{int(time.time()) % 100000}"


def finish(stack: ClusterStack, run: DrillRun) -> VerifyReport:
    # A replica started again serves reads before it has fetched what its twin stored meanwhile
    # (docs/sink.md): wait until every replica caught up, as an operator would, then check.
    wait_until(lambda: sync_replicas(stack.cluster, run.d.name) is None, 120, "replicas in sync")
    report = run.check(dead_letters=0)  # an outage is never the rows' fault: nothing dead-lettered
    assert report.duplicated_raw == 0, report.as_dict()
    check_placement(stack.cluster, run.d.name, run.run_id, run.clients)
    assert run.d.procs["sink"].poll() is None, "the sink must wait for ClickHouse, not die"
    return report


@pytest.mark.drill
def test_replica_killed_mid_run(tmp_path: Path, local_cluster: Any, kafka_bootstrap: str) -> None:
    with cluster_stack(tmp_path, local_cluster, kafka_bootstrap) as stack:
        run = start_run(stack, _name("rk"), CLIENTS, CLIENTS // 5, env=SLOW)
        victim = local_cluster.shard(2)[0]  # the replica the first insert worker writes shard 2 to
        os.kill(victim.record.pid, signal.SIGKILL)
        survivor = local_cluster.shard(2)[1]
        before = len(local_rows(survivor, run.d.name, run.run_id))
        # inserts continue on the other replica of shard 2 while its twin is dead
        wait_until(
            lambda: len(local_rows(survivor, run.d.name, run.run_id)) > before + 2000, 60, "shard 2 inserts"
        )
        stack.restart(victim)  # it catches up from its twin (and brings back what only it had)
        finish(stack, run)


@pytest.mark.drill
def test_zookeeper_stopped(tmp_path: Path, local_cluster: Any, kafka_bootstrap: str) -> None:
    with cluster_stack(tmp_path, local_cluster, kafka_bootstrap) as stack:
        run = start_run(stack, _name("zk"), CLIENTS, CLIENTS // 5, env=SLOW)
        local_cluster.stop_zookeeper()
        time.sleep(OUTAGE)
        local_cluster.restart_zookeeper()
        finish(stack, run)
        log = run.d.log("sink")
        assert "pausing the partitions" in log and "ClickHouse is back" in log, log[-3000:]


@pytest.mark.drill
def test_shard_down(tmp_path: Path, local_cluster: Any, kafka_bootstrap: str) -> None:
    """A whole shard down: every window holds rows of both shards and one offset per partition commits
    all of them, so the windows the sink holds (at most 3 in the insert step and a window's worth of
    rows waiting: KCOLLECT_SINK_BATCH_ROWS, here 2,000) store their shard-1 rows, and then everything
    waits: the partitions are paused until shard 2 is back."""
    with cluster_stack(tmp_path, local_cluster, kafka_bootstrap) as stack:
        env = STRETCHED | {"KCOLLECT_SINK_BATCH_ROWS": "2000"}
        run = start_run(stack, _name("sd"), CLIENTS, CLIENTS // 10, env=env)
        shard2 = local_cluster.shard(2)
        for server in shard2:  # at once: a stop that takes seconds would let a short run finish first
            os.kill(server.record.pid, signal.SIGKILL)
        live = local_cluster.shard(1)[0]
        time.sleep(2)
        during = [len(local_rows(live, run.d.name, run.run_id))]
        time.sleep(max(OUTAGE - 2, 1))
        during.append(len(local_rows(live, run.d.name, run.run_id)))
        for server in shard2:
            stack.restart(server)
        report = finish(stack, run)
        shard1_total = len(local_rows(live, run.d.name, run.run_id))
        print(f"shard 1 rows 2 s into the outage {during[0]}, at its end {during[1]}, in all {shard1_total}")
        assert during[1] < shard1_total, "shard 1 must have been waiting for shard 2"
        assert report.stored == CLIENTS
        assert "pausing the partitions" in run.d.log("sink")


@pytest.mark.drill
def test_sink_killed_between_shard_inserts_and_commit(
    tmp_path: Path, local_cluster: Any, kafka_bootstrap: str
) -> None:
    """``after_insert:3``: the sink exits right after one shard acknowledged its part of a window,
    before the other shard's part and before the commit. Windows close by count only (the last ones
    by time), so the restarted sink cuts the same windows, sends the same blocks, and the replicas drop
    the ones they already hold: no raw duplicate."""
    with cluster_stack(tmp_path, local_cluster, kafka_bootstrap) as stack:
        name = _name("sc")
        env = {
            "KCOLLECT_SINK_BATCH_ROWS": "3000",
            "KCOLLECT_SINK_BATCH_SECONDS": "8",
            "KCOLLECT_SINK_IDLE_SECONDS": "0",
            "KCOLLECT_SIM_LATENCY_MS": "20",
        }
        d = stack.deploy(name, **env)
        d.launch("processor0", ["processor"])
        d.launch("sink", ["sink"], env={"KCOLLECT_FAULT_AT": "after_insert:3"})
        d.wait_ready("processor0", "sink")
        run = DrillRun(d, f"{name}-run", CLIENTS, watched(d))
        enqueue(d, run.run_id, CLIENTS)
        assert d.procs["sink"].wait(120) == 97
        stored_at_crash = d.stored(run.run_id)
        assert 0 < stored_at_crash < CLIENTS
        d.launch("sink", ["sink"])
        d.wait_ready("sink")
        finish(stack, run)


@pytest.mark.drill
def test_full_run_100k(tmp_path: Path, local_cluster: Any, kafka_bootstrap: str) -> None:
    """100,000 clients through processor and sink processes onto the cluster; ``kcollect runs verify``
    (through the Distributed tables) exits 0."""
    with cluster_stack(tmp_path, local_cluster, kafka_bootstrap) as stack:
        clients = 100_000
        name = _name("full")
        d = stack.deploy(name)
        start_pipeline(d)
        run = DrillRun(d, f"{name}-run", clients, watched(d))
        started = time.monotonic()
        enqueue(d, run.run_id, clients)
        finish(stack, run)
        print(f"100k clients stored on the cluster in {time.monotonic() - started:.1f} s")
        done = d.cli("runs", "verify", run.run_id, "--clients", str(clients))
        assert done.returncode == 0, done.stdout + done.stderr
