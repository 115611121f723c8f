"""Scaling past the partition count during a schedule, on Apache Kafka, with per-client state: one
processor and one sink on 2 partitions; `kcollect topics grow` to 4 between two runs and to 8 in the
middle of one, with members started until there are more than the original partitions. Every run of the
schedule is complete and exact (the run checker clean, every client's increase and rate against its own
previous run, wherever its requests moved), lag ends at zero, and the extra members own partitions."""

from __future__ import annotations

import time
import zlib
from pathlib import Path

import pytest

from examples.stateful import counter_rate
from processors.processor.state.history import FIRST_SIGHT, GAP
from producers.enqueue.enqueue import enqueue_run
from producers.enqueue.sources import FileSource
from schemas.topics import REQUESTS, RESULTS
from streams.kafka.admin import grow_topics
from streams.kafka.clients import make_admin
from streams.kafka.end_offsets import high_watermarks
from streams.lag.discovery import describe_groups
from streams.runs.checker import verify_run
from tests.integration.pipeline import Pipeline
from tests.integration.processors.processor.test_state import (
    computed,
    enqueue,
    expected_second,
    identical_duplicates,
    run_id,
    slot,
    stateful,
    stateful_pipeline,
    wait_all,
    wait_drained,
)

pytestmark = pytest.mark.integration
FAST_METADATA = {"KCOLLECT_KAFKA_CONFIG": '{"topic.metadata.refresh.interval.ms": "1000"}'}
PLAIN = [f"c{i}" for i in range(1500)]
GAPS = [f"gap-{i}" for i in range(40)]  # not in run 2
FIRST = {"bytes_sent_reason": float(FIRST_SIGHT), "errors_reason": float(FIRST_SIGHT)}


def gap_of_two_minutes(client: str) -> dict[str, float]:
    rate = counter_rate(client)
    return {
        "bytes_sent_delta": 120.0 * rate,
        "bytes_sent_increase": 120.0 * rate,
        "bytes_sent_rate": float(rate),
        "bytes_sent_reason": float(GAP),
        "errors_delta": 2.0,
        "errors_reason": float(GAP),
    }


def grow(pipe: Pipeline, partitions: int) -> None:
    done = pipe.cli("topics", "grow", "--partitions", str(partitions))
    assert done.returncode == 0, done.stderr


def quick_enqueue(pipe: Pipeline, n: int, clients: list[str]) -> None:
    """`kcollect enqueue --schedule ... --scheduled-for ...` without starting a process."""
    source = pipe.workdir / f"clients-{n}-quick.txt"
    source.write_text("".join(f"{c}\n" for c in clients))
    summary = enqueue_run(pipe.settings, run_id(n), FileSource(str(source)), int(slot(n).timestamp() * 1000))
    assert summary.enqueued == len(clients)


def add_members(pipe: Pipeline, tmp: Path, *names: str) -> None:
    for name in names:
        service = "processor" if name.startswith("processor") else "sink"
        store = {"KCOLLECT_PROCESSOR_STORE_DIR": str(tmp / f"store-{name}")}
        pipe.launch(name, [service], env=FAST_METADATA | store)


def owners(pipe: Pipeline, group: str, topic: str, partitions: int, members: int) -> dict[int, str]:
    """Partition -> member id once every partition of ``topic`` has an owner and ``members`` members
    own some (an AssertionError after 60 s)."""
    settings = pipe.settings
    admin = make_admin(settings)
    deadline = time.monotonic() + 60
    found: dict[int, str] = {}
    while time.monotonic() < deadline:
        info = describe_groups(admin, [group], 10)[group]
        found = {p: owner.member for (t, p), owner in info.owners.items() if t == topic}
        if len(found) == partitions and len(set(found.values())) == members:
            return found
        time.sleep(0.5)
    raise AssertionError(f"{group} on {topic}: {found} (wanted {partitions} partitions, {members} members)")


def check_run(pipe: Pipeline, n: int, expected: dict[str, dict[str, float]]) -> None:
    run = run_id(n)
    wait_all(pipe, run, len(expected))
    got = {client: stateful(values) for client, values in computed(pipe, run).items()}
    wrong = {c: (got.get(c), want) for c, want in expected.items() if got.get(c) != want}
    assert not wrong, f"{len(wrong)} client(s) of {run} wrong, e.g. {list(wrong.items())[:3]}"
    report = verify_run(pipe.settings, run)
    assert (report.lost, report.duplicated_final, report.unexpected) == (0, 0, 0), report.as_dict()
    assert report.ok, report.problems


def test_growing_mid_schedule_keeps_every_clients_state_and_spreads_the_work(
    apache_kafka: str, clickhouse_url: str, unique_name: str, tmp_path: Path
) -> None:
    pipe = stateful_pipeline(
        apache_kafka,
        clickhouse_url,
        unique_name,
        tmp_path,
        latency_ms=200,  # batches of 50: run 3's first part is (likely) under way when the topics grow
        KCOLLECT_PARTITIONS="2",
        KCOLLECT_CONSUME_BATCH="50",
        KCOLLECT_SUBSYSTEM_BATCH="50",
        KCOLLECT_MAX_IN_FLIGHT_BATCHES="1",
        KCOLLECT_SESSION_TIMEOUT_MS="6000",
    )
    settings = pipe.settings
    prefix = settings.topic_prefix
    requests, results = REQUESTS.name(prefix), RESULTS.name(prefix)
    everyone = PLAIN + GAPS
    try:
        add_members(pipe, tmp_path, "processor", "sink")
        pipe.wait_ready("processor", "sink")
        enqueue(pipe, 1, everyone)
        check_run(pipe, 1, dict.fromkeys(everyone, FIRST))

        # between runs: 2 -> 4 partitions, and three processors and three sinks (more than 2)
        grow(pipe, 4)
        add_members(pipe, tmp_path, "processor-2", "processor-3", "sink-2", "sink-3")
        owners(pipe, settings.processor_group, requests, 4, 3)
        owners(pipe, settings.sink_group, results, 4, 3)
        enqueue(pipe, 2, PLAIN)
        check_run(pipe, 2, {c: expected_second(c) for c in PLAIN})
        moved = [c for c in PLAIN if zlib.crc32(c.encode()) % 4 >= 2]  # librdkafka's consistent_random
        ends = high_watermarks(make_admin(settings), [(requests, p) for p in range(4)], 10)
        assert ends[(requests, 2)] + ends[(requests, 3)] == len(moved) > 0, ends

        # during a run: part of run 3 enqueued on 4 partitions, 4 -> 8 while it is handled, five
        # processors and four sinks, then the rest of run 3 on 8 partitions (whether old-layout requests
        # are still pending at the last rebalance depends on timing: test_state_catch_up.py makes sure)
        first = PLAIN[:1200]
        quick_enqueue(pipe, 3, first)  # in this process: no CLI start-up before the growth
        assert set(grow_topics(settings, 8).values()) == {(4, 8)}
        add_members(pipe, tmp_path, "processor-4", "processor-5", "sink-4")
        processors = owners(pipe, settings.processor_group, requests, 8, 5)
        owners(pipe, settings.sink_group, results, 8, 4)
        enqueue(pipe, 3, PLAIN[1200:] + GAPS)
        check_run(pipe, 3, {c: expected_second(c) for c in PLAIN} | {c: gap_of_two_minutes(c) for c in GAPS})

        # the next run: a client of the first half, handled where its run 3 was enqueued, is
        # computed against that run in the partition it moved to
        enqueue(pipe, 4, everyone)
        check_run(pipe, 4, {c: expected_second(c) for c in everyone})
        wait_drained(pipe)
        for n in (1, 2, 3, 4):
            identical_duplicates(pipe, run_id(n))
        assert len(set(processors.values())) == 5 > settings.partitions
        for name in list(pipe.procs):
            assert pipe.stop(name) == 0, pipe.log(name)[-2000:]
    finally:
        pipe.kill_all()
