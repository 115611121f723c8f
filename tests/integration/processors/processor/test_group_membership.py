"""Group membership on Apache Kafka: static membership (a processor restarted within its session timeout
with the same ``group.instance.id`` gets its partitions back without a rebalance of the others), and
KIP-848's consumer protocol (joins, leaves and a crash during a run, with nothing lost)."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from confluent_kafka.admin import AdminClient

from streams.lag.discovery import GroupInfo, describe_groups
from tests.integration.pipeline import Pipeline, make_pipeline
from tests.integration.processors.processor.test_kit import enqueue, read_results

pytestmark = pytest.mark.integration
SESSION_MS = 10000


@pytest.fixture
def pipe(apache_kafka: str, clickhouse_url: str, unique_name: str, tmp_path: Path) -> Iterator[Pipeline]:
    pipeline = make_pipeline(apache_kafka, clickhouse_url, unique_name, tmp_path)
    yield pipeline
    pipeline.kill_all()


def _group(pipe: Pipeline) -> GroupInfo:
    admin = AdminClient({"bootstrap.servers": pipe.settings.kafka_bootstrap()})
    group = pipe.settings.processor_group
    return describe_groups(admin, [group], 10)[group]


def _owners(pipe: Pipeline, members: int, timeout: float = 60) -> dict[tuple[str, int], str]:
    """(topic, partition) of the requests and retry topics -> the client id owning it, once ``members``
    members own all 8 of them."""
    deadline = time.monotonic() + timeout
    while True:
        info = _group(pipe)
        owners = {tp: o.client_id for tp, o in info.owners.items()}
        if info.state == "stable" and len(owners) == 8 and len(set(owners.values())) == members:
            return owners
        assert time.monotonic() < deadline, (info, owners)
        time.sleep(0.2)


def _assignments(log: str) -> int:
    return len(re.findall(r"assigned \d+ partition|revoking \d+ partition|lost \d+ partition", log))


def _start(pipe: Pipeline, name: str, **env: str) -> None:
    pipe.launch(name, ["processor"], env={"KCOLLECT_CLIENT_ID": name} | env)
    pipe.wait_ready(name)


def test_static_member_restarted_within_its_session_gets_its_partitions_back(pipe: Pipeline) -> None:
    pipe.env |= {"KCOLLECT_SESSION_TIMEOUT_MS": str(SESSION_MS)}
    _start(pipe, "proc-a", KCOLLECT_PROCESSOR_GROUP_INSTANCE_ID="proc-a")
    _start(pipe, "proc-b", KCOLLECT_PROCESSOR_GROUP_INSTANCE_ID="proc-b")
    before = _owners(pipe, members=2)
    b_events = _assignments(pipe.log("proc-b"))

    assert pipe.stop("proc-a") == 0  # a static member does not leave the group on close
    started = time.monotonic()
    _start(pipe, "proc-a", KCOLLECT_PROCESSOR_GROUP_INSTANCE_ID="proc-a")
    resumed = time.monotonic() - started
    after = _owners(pipe, members=2)
    print(f"static member back with its partitions {resumed:.2f} s after its restart")  # docs/operations.md

    assert after == before
    assert _assignments(pipe.log("proc-b")) == b_events, pipe.log("proc-b")  # no rebalance of the other
    enqueue(pipe, "static-1", range(2000))
    assert len(read_results(pipe, 2000, timeout=60)) == 2000
    _owners_are_shown(pipe, _owners(pipe, members=2))


def _owners_are_shown(pipe: Pipeline, owners: dict[tuple[str, int], str]) -> None:
    """`kcollect lag --json` and `kcollect doctor --json` name each partition's owner on Kafka."""
    group = pipe.settings.processor_group
    done = pipe.cli("lag", "--json", "--samples", "1", "--group", group)
    assert done.returncode == 0, done.stderr
    rows = orjson.loads(done.stdout)
    assert rows
    for row in rows:
        assert row["client_id"] == owners[(row["topic"], row["partition"])], row
        assert row["host"] == "127.0.0.1" and row["owner"].startswith(row["client_id"]), row
    done = pipe.cli("doctor", "--json", "--interval", "0.5")
    assert done.returncode == 0, done.stderr
    stage = next(s for s in orjson.loads(done.stdout)["facts"]["stages"] if s["group"] == group)
    assert stage["owners"] and {name.split("@")[0] for name in stage["owners"]} <= set(owners.values())


def test_kip848_joins_leaves_and_a_crash_lose_nothing(pipe: Pipeline) -> None:
    pipe.env |= {
        "KCOLLECT_GROUP_PROTOCOL": "consumer",
        "KCOLLECT_CONSUME_BATCH": "100",
        "KCOLLECT_SUBSYSTEM_BATCH": "100",
        "KCOLLECT_SIM_LATENCY_MS": "60",
    }
    pipe.start("sink")
    _start(pipe, "proc-1")
    assert _group(pipe).state == "stable"
    enqueue(pipe, "kip848-1", range(20000))
    time.sleep(1.5)
    _start(pipe, "proc-2")  # a join during the run
    _owners(pipe, members=2)
    time.sleep(1.0)
    assert pipe.stop("proc-1") == 0  # a leave
    time.sleep(1.0)
    crashed = pipe.procs.pop("proc-2")
    crashed.send_signal(signal.SIGKILL)  # a crash: the broker expires the member after its session
    crashed.wait(10)
    _start(pipe, "proc-3")
    assert pipe.wait_rows("kip848-1", 20000, timeout=180) == 20000
    assert pipe.stored("kip848-1", final=True) == 20000
    distinct = pipe.query(
        "SELECT uniqExact(client_id) FROM client_results WHERE run_id = %(r)s", {"r": "kip848-1"}
    )
    assert distinct == [(20000,)]
    assert _owners(pipe, members=1)
    assert pipe.stop("proc-3") == 0


def test_kip848_is_refused_on_tansu(
    tansu_broker: str, clickhouse_url: str, unique_name: str, tmp_path: Path
) -> None:
    pipeline = make_pipeline(
        tansu_broker, clickhouse_url, unique_name, tmp_path, KCOLLECT_GROUP_PROTOCOL="consumer"
    )
    done = pipeline.cli("processor")
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and "KCOLLECT_GROUP_PROTOCOL=consumer" in lines[0] and "Tansu" in lines[0], lines
