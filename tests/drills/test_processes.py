"""Drills on the service processes: random kill -9 of processors during a run, SIGTERM in the middle of
a rebalance, and a processor frozen (SIGSTOP) past the session timeout, then thawed.

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
        run.check()


@pytest.mark.drill
def test_sigterm_during_rebalance(tmp_path: Path, shared_clickhouse: ClickHouse) -> None:
    with drill_stack(tmp_path, shared_clickhouse) as stack:
        name = f"dr{int(time.time()) % 100000}"
        run = start_run(stack, name, CLIENTS, CLIENTS // 5, processors=2, env=SLOW)
        d = run.d
        d.launch("processor2", ["processor"])  # a third member joins: the group rebalances
        time.sleep(0.5)
        code = d.stop("processor0", timeout=60)  # SIGTERM while the rebalance is under way
        assert code == 0, d.log("processor0")[-2000:]
        run.check()


@pytest.mark.drill
def test_processor_frozen_past_session_timeout(tmp_path: Path, shared_clickhouse: ClickHouse) -> None:
    with drill_stack(tmp_path, shared_clickhouse) as stack:
        name = f"ds{int(time.time()) % 100000}"  # session timeout 3 s
        run = start_run(stack, name, CLIENTS, CLIENTS // 5, processors=2, env=SLOW)
        frozen = run.d.procs["processor0"]
        frozen.send_signal(signal.SIGSTOP)
        time.sleep(10)  # > 3 x the session timeout: the group moves its partitions to processor1
        frozen.send_signal(signal.SIGCONT)
        run.check()
        assert frozen.poll() is None, "the thawed processor should rejoin, not die"
