"""Processors as a consumer group on the real broker: kill -9 of one member, a third joining mid-run;
every client ends with exactly one row (ClickHouse FINAL) and nothing is dead-lettered.

The third member's share of work must not depend on how fast the broker rebalances (Apache Kafka
hands the dead member's partitions to the survivor before a slow-starting third member joins, and the
survivor may finish the run alone): once the third member owns partitions, a second run is enqueued,
and it must take part of that."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path

import pytest

from tests.integration.pipeline import make_pipeline
from tests.integration.processors.processor.test_kit import enqueue, read_topic, start_processor

pytestmark = pytest.mark.integration

CLIENTS = 60_000
SECOND = 20_000
ASSIGNED = re.compile(r'"msg":"assigned ([0-9]+) partition')


def _owns_partitions(log: str) -> bool:
    """True once the service's log shows an assignment of at least one partition."""
    return any(int(count) > 0 for count in ASSIGNED.findall(log))


def wait_for(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_kill_one_of_two_processors_and_add_a_third(
    kafka_bootstrap: str, clickhouse_url: str, unique_name: str, tmp_path: Path
) -> None:
    pipe = make_pipeline(
        kafka_bootstrap,
        clickhouse_url,
        unique_name,
        tmp_path,
        KCOLLECT_SIM_LATENCY_MS="50",
        KCOLLECT_CONSUME_BATCH="250",
        KCOLLECT_MAX_IN_FLIGHT_BATCHES="1",
        KCOLLECT_SESSION_TIMEOUT_MS="3000",
        KCOLLECT_COMMIT_INTERVAL_SECONDS="0.2",
    )
    try:
        first = start_processor(pipe, "proc-a")
        start_processor(pipe, "proc-b")
        pipe.start("sink")
        pipe.wait_ready("proc-a", "proc-b", "sink")
        enqueue(pipe, "grp-1", range(CLIENTS))
        wait_for(lambda: pipe.wait_rows("grp-1", 1, timeout=0.1) >= 5000, 60, "no progress")
        first.send_signal(signal.SIGKILL)  # mid-run, with work in flight and offsets uncommitted
        first.wait(10)
        stored = pipe.wait_rows("grp-1", CLIENTS, timeout=0.1)
        assert stored < CLIENTS * 0.8, "the kill should land in the middle of the run"
        start_processor(pipe, "proc-c")
        pipe.wait_ready("proc-c")
        wait_for(lambda: _owns_partitions(pipe.log("proc-c")), 60, "proc-c never got a partition")
        enqueue(pipe, "grp-2", range(SECOND))
        assert pipe.wait_rows("grp-1", CLIENTS, timeout=120) == CLIENTS
        assert pipe.wait_rows("grp-2", SECOND, timeout=120) == SECOND
        for run_id, clients in (("grp-1", CLIENTS), ("grp-2", SECOND)):
            rows = pipe.query(
                "SELECT count(), uniqExact(client_id), countIf(status != 'ok') "
                "FROM client_results FINAL WHERE run_id = %(r)s",
                {"r": run_id},
            )
            assert rows[0] == (clients, clients, 0)
        for name in ("proc-b", "proc-c"):
            assert pipe.stop(name) == 0
        stats_c = json.loads((tmp_path / "proc-c.stats.json").read_text())
        assert stats_c["results"] > 0, "the processor that joined mid-run took partitions and work"
        assert read_topic(pipe, "requests.dlq", timeout=3) == []
    finally:
        pipe.kill_all()
