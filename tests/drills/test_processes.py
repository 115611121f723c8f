"""Drills on the service processes: random kill -9 of processors during a run, SIGTERM in the middle of
a rebalance (sent once a member logs that it is revoking partitions: the rebalance is under way, by
its own word, not after a sleep), and a processor frozen (SIGSTOP) past the session timeout, then
thawed.

The simulated subsystems answer after 100 ms per batch call (``KCOLLECT_SIM_LATENCY_MS``) so that a run
of 30k clients lasts long enough for the faults to land in the middle of it.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest

from bench.deployment import Deployment
from tests.drills.kit import ClickHouse, drill_stack, start_run, wait_stored_some

CLIENTS = 30_000
SLOW = {"KCOLLECT_SIM_LATENCY_MS": "100", "KCOLLECT_SINK_BATCH_SECONDS": "0.3"}


@pytest.mark.drill
def test_random_kill_9_of_processors(tmp_path: Path, shared_clickhouse: ClickHouse) -> None:
    seed = int(os.environ.get("DRILL_SEED", time.time()))
    dice = random.Random(seed)
    with drill_stack(tmp_path, shared_clickhouse) as stack:
        run = start_run(stack, f"dk{seed % 100000}", CLIENTS, 0, processors=2, env=SLOW)
        d = run.d
        for kill in range(4):
            wait_stored_some(d, run.run_id, (kill + 1) * CLIENTS // 8, timeout=90)
            victim = f"processor{dice.randrange(2)}"
            d.procs[victim].send_signal(signal.SIGKILL)
            d.procs.pop(victim).wait(10)
            time.sleep(dice.uniform(0.2, 2.0))
            d.launch(victim, ["processor"])
        run.check(dead_letters=0)


REVOKING = "revoking "  # streams/steps/stream_processor.py logs it when its revoke callback starts


def wait_revoking(d: Deployment, before: dict[str, int], timeout: float = 60) -> str:
    """The first member whose log shows a new revoke (the group's rebalance reached it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for member, seen in before.items():
            if d.log(member).count(REVOKING) > seen:
                return member
        time.sleep(0.01)
    raise AssertionError(f"no member of {sorted(before)} revoked partitions within {timeout} s")


@pytest.mark.drill
def test_sigterm_during_rebalance(tmp_path: Path, shared_clickhouse: ClickHouse) -> None:
    with drill_stack(tmp_path, shared_clickhouse) as stack:
        name = f"dr{int(time.time()) % 100000}"
        run = start_run(stack, name, CLIENTS, CLIENTS // 5, processors=2, env=SLOW)
        d = run.d
        members = ("processor0", "processor1")
        before = {m: d.log(m).count(REVOKING) for m in members}
        d.launch("processor2", ["processor"])  # a third member joins: the group rebalances
        victim = wait_revoking(d, before)
        code = d.stop(victim, timeout=60)  # SIGTERM while the rebalance is under way
        assert code == 0, d.log(victim)[-2000:]
        run.check(dead_letters=0)


@pytest.mark.drill
def test_processor_frozen_past_session_timeout(tmp_path: Path, shared_clickhouse: ClickHouse) -> None:
    with drill_stack(tmp_path, shared_clickhouse) as stack:
        name = f"ds{int(time.time()) % 100000}"  # session timeout 3 s
        run = start_run(stack, name, CLIENTS, CLIENTS // 5, processors=2, env=SLOW)
        frozen = run.d.procs["processor0"]
        frozen.send_signal(signal.SIGSTOP)
        time.sleep(10)  # > 3 x the session timeout: the group moves its partitions to processor1
        frozen.send_signal(signal.SIGCONT)
        run.check(dead_letters=0)
        assert frozen.poll() is None, "the thawed processor should rejoin, not die"
