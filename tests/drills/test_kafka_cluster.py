"""Drills on a 3-broker Apache Kafka cluster (RF 3, ``min.insync.replicas=2``, ``acks=all``, unclean
leader election off: ``tests/drills/kafka_cluster_kit.py``): the leader of a busy partition killed
with -9 mid-run, one broker down for 60 s, and a rolling restart of all three. Processors and sinks
run as processes; each drill ends with the run checker and expects no dead letter.

Each fault lands once part of a run is stored (``start_run`` waits for it), never after a sleep; the
drills also demand progress while a broker is away (the cluster must serve on two brokers, not only
after the third is back), and every service still running at the end.
"""

from __future__ import annotations

import time

import pytest

from bench.deployment import Deployment
from tests.drills.kafka_cluster_kit import ClusterDrillStack
from tests.drills.kit import DrillRun, begin_run, check_run, start_run, wait_stored_some

CLIENTS = 20_000
# Paced by the simulated latency, not the CPU: 50 clients per call of 500 ms, 4 calls at once per
# processor: a run of 20,000 takes ~25 s on an idle machine, so every fault lands inside one.
SLOW = {
    "KCOLLECT_SIM_LATENCY_MS": "500",
    "KCOLLECT_SUBSYSTEM_BATCH": "50",
    "KCOLLECT_SINK_BATCH_SECONDS": "0.3",
}
OUTAGE_SECONDS = 60.0
FAILOVER_TIMEOUT = 90.0


def _name(prefix: str) -> str:
    return f"{prefix}{int(time.time()) % 100000}"


def _assert_services_running(d: Deployment) -> None:
    exited = {name: p.returncode for name, p in d.procs.items() if p.poll() is not None}
    assert not exited, f"services exited: {exited}: {[d.log(n)[-1500:] for n in exited]}"


def _mid_run(run: DrillRun) -> int:
    """Rows of the run stored now; fails when the run is already whole (the fault would miss it)."""
    stored = run.d.stored(run.run_id)
    assert stored < run.clients, f"run {run.run_id} already stored whole: the fault would land after it"
    return stored


def _progress(run: DrillRun, since: int, timeout: float = FAILOVER_TIMEOUT) -> int:
    """Wait until another eighth of the run (or the rest of it) is stored."""
    return wait_stored_some(run.d, run.run_id, min(run.clients, since + run.clients // 8), timeout)


@pytest.mark.drill
def test_leader_of_a_busy_partition_killed_9_mid_run(kafka_cluster: ClusterDrillStack) -> None:
    stack = kafka_cluster
    run = start_run(stack, _name("kl"), CLIENTS, CLIENTS // 4, processors=2, env=SLOW)
    topic, partition, leader = stack.busiest_leader(run.d)
    stored = _mid_run(run)
    assert stack.cluster.kill_node(stack.index_of(leader))
    killed_at = time.monotonic()

    deadline = killed_at + FAILOVER_TIMEOUT
    while stack.leader(topic, partition) in (leader, -1):  # the killed node stays leader until fenced
        assert time.monotonic() < deadline, (
            f"{topic}[{partition}] has no new leader after {FAILOVER_TIMEOUT} s"
        )
        time.sleep(0.2)
    failover = time.monotonic() - killed_at
    _progress(run, stored)  # the run goes on with the node dead
    progressed = time.monotonic() - killed_at

    stack.cluster.start_node(stack.index_of(leader))
    in_sync = stack.wait_in_sync()
    report = run.check(dead_letters=0)
    _assert_services_running(run.d)
    print(
        f"killed node {leader} (leader of {topic}[{partition}]) at {stored}/{CLIENTS} stored; new leader "
        f"after {failover:.1f} s, +{CLIENTS // 8} stored after {progressed:.1f} s, back in sync "
        f"{in_sync:.1f} s after restart; recovery {report.recovery_seconds} s"
    )


@pytest.mark.drill
def test_one_broker_down_for_60_s_then_back(kafka_cluster: ClusterDrillStack) -> None:
    stack = kafka_cluster
    run = start_run(stack, _name("kd"), CLIENTS, CLIENTS // 4, processors=2, env=SLOW)
    down = stack.most_leading(run.d)
    index = stack.index_of(down)
    stored = _mid_run(run)
    assert stack.cluster.stop_node(index)
    stopped_at = time.monotonic()
    behind = stack.wait_under_replicated()

    _progress(run, stored)
    # enqueued with a broker down
    second = begin_run(run.d, f"{run.run_id}2", CLIENTS, run.watch, CLIENTS // 8, FAILOVER_TIMEOUT)
    left = OUTAGE_SECONDS - (time.monotonic() - stopped_at)
    assert left > 0, "the broker was down longer than the drill's outage before its checks were done"
    time.sleep(left)  # the outage's length is the drill's input, not a wait for a state

    stack.cluster.start_node(index)
    in_sync = stack.wait_in_sync()
    check_run(run.d, run.run_id, CLIENTS, dead_letters=0)
    second.check(dead_letters=0)
    _assert_services_running(run.d)
    print(
        f"node {down} down {OUTAGE_SECONDS:.0f} s from {stored}/{CLIENTS} stored, {len(behind)} partitions "
        f"under-replicated; in sync {in_sync:.1f} s after its start"
    )


@pytest.mark.drill
def test_rolling_restart_of_all_three_brokers(kafka_cluster: ClusterDrillStack) -> None:
    stack = kafka_cluster
    first = start_run(stack, _name("kr"), CLIENTS, CLIENTS // 4, processors=2, env=SLOW)
    d = first.d
    runs = [first]
    timings: list[str] = []
    for node in stack.cluster.nodes:
        run = runs[-1]
        if node.index > 0:  # every restart lands in a run of its own, a quarter of it stored
            run = begin_run(d, f"{first.run_id}-{node.node_id}", CLIENTS, first.watch, CLIENTS // 4)
            runs.append(run)
        stored = _mid_run(run)
        began = time.monotonic()
        assert stack.cluster.stop_node(node.index)
        behind = stack.wait_under_replicated()  # the metadata shows it gone: the wait below means something
        stack.cluster.start_node(node.index)
        in_sync = stack.wait_in_sync()  # back in every ISR before the next one goes
        took = time.monotonic() - began
        timings.append(
            f"node {node.node_id} at {stored}/{CLIENTS}: {took:.1f} s, {len(behind)} partitions "
            f"under-replicated, {in_sync:.1f} s to sync after its start"
        )
        _assert_services_running(d)
    for run in runs[:-1]:
        check_run(d, run.run_id, CLIENTS, dead_letters=0)
    runs[-1].check(dead_letters=0)
    _assert_services_running(d)
    print("rolling restart: " + "; ".join(timings))
