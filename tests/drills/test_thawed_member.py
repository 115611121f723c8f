"""A processor killed (-9), started again, then frozen (SIGSTOP) past its session timeout the moment it
owns partitions, and thawed (SIGCONT): the sequence of the campaign's seed 195. Committed offsets must
never move backwards, and the run must pass the checker.

The restarted member is frozen right after its first assignment (its ready file), while its first
batches are read and in flight; its partitions move to the other processor during the freeze and
come back after the thaw. The offsets are sampled every 0.1 s.

What broke seed 195 needs one more thing this drill cannot force: on the thaw, the consume call that
serves the lost callback also returns records it read before it, when librdkafka's version barrier
reaches its queue late (a thread scheduling race). The thawed member then committed them, with its
new generation, on a partition the other member had committed further. That race is reproduced
deterministically in tests/integration/streams/steps/test_records_from_before_a_rebalance.py; this
drill plays the whole sequence on real processes.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.drills.kit import ClickHouse, OffsetWatch, check_run, drill_stack, enqueue, start_pipeline

CLIENTS = 20_000
SESSION_MS = 3000
ENV = {
    "KCOLLECT_SIM_LATENCY_MS": "50",
    "KCOLLECT_SESSION_TIMEOUT_MS": str(SESSION_MS),
    "KCOLLECT_PARTITIONS": "4",
    "KCOLLECT_CONSUME_BATCH": "100",
    "KCOLLECT_MAX_IN_FLIGHT_BATCHES": "1",
    "KCOLLECT_SINK_BATCH_SECONDS": "0.3",
    "KCOLLECT_COMMIT_INTERVAL_SECONDS": "0.2",
}


@pytest.mark.drill
def test_a_thawed_member_never_moves_a_committed_offset_backwards(
    tmp_path: Path, shared_clickhouse: ClickHouse
) -> None:
    with drill_stack(tmp_path, shared_clickhouse) as stack:
        name = f"dt{int(time.time()) % 100000}"
        d = stack.deploy(name, **ENV)
        start_pipeline(d, processors=2)
        watch = OffsetWatch(d, interval=0.1)
        watch.start()
        run_id = f"{name}-run"
        enqueue(d, run_id, CLIENTS)
        while d.stored(run_id) < CLIENTS // 10:
            time.sleep(0.05)
        d.procs["processor1"].kill()
        d.procs["processor1"].wait(10)
        time.sleep(1.0)
        restarted = d.launch("processor1", ["processor"])
        d.wait_ready("processor1")
        restarted.send_signal(signal.SIGSTOP)
        time.sleep(2.5 * SESSION_MS / 1000)  # past the session timeout: its partitions move away
        restarted.send_signal(signal.SIGCONT)
        check_run(d, run_id, CLIENTS, watch, dead_letters=0)
        assert restarted.poll() is None, "the thawed processor should rejoin, not die"
