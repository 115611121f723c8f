"""Per-client state on the real broker and ClickHouse: counters become exact increases and rates; first
sight, reset, a missed run and an ad-hoc run give their documented reasons; crashes, a member joining
and one leaving, and a deleted local store change no result."""

from __future__ import annotations

import re
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from examples.stateful import counter_rate, counter_values
from processors.processor.state.history import FIRST_SIGHT, GAP, RESET, UNSCHEDULED
from schemas.topics import REQUESTS, RESULTS, STATE_CHANGELOG
from streams.kafka.producer import BatchProducer, DeliveryTracker
from streams.lag.probe import partition_lags
from streams.steps.faults import EXIT_CODE
from tests.integration.pipeline import Pipeline, make_pipeline

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RESET_AFTER = int((T0 + timedelta(seconds=90)).timestamp())  # reset-* restart between runs 1 and 2
SCHEDULE = "fleet"
CONFIG = {
    "subsystems": [
        {
            "name": "traffic",
            "kind": "plugin",
            "factory": "examples.stateful:make_counters",
            "metrics": ["bytes_sent", "errors"],
            "options": {"reset_after": RESET_AFTER},
        }
    ],
    "state": {"metrics": {"bytes_sent": ["delta", "increase", "rate"], "errors": ["delta"]}},
}


def stateful_pipeline(
    kafka: str, clickhouse: str, name: str, tmp: Path, latency_ms: float = 0, **extra: str
) -> Pipeline:
    config = tmp / "processor.json"
    subsystem = CONFIG["subsystems"][0] | {"latency_ms": latency_ms}  # type: ignore[index,operator]
    config.write_bytes(orjson.dumps(CONFIG | {"subsystems": [subsystem]}))
    return make_pipeline(kafka, clickhouse, name, tmp, KCOLLECT_PROCESSOR_CONFIG=str(config), **extra)


def slot(n: int) -> datetime:
    return T0 + timedelta(minutes=n)


def run_id(n: int) -> str:
    return f"{SCHEDULE}-{slot(n):%Y%m%dT%H%M%SZ}"


def enqueue(pipe: Pipeline, n: int, clients: list[str]) -> None:
    source = pipe.workdir / f"clients-{n}.txt"
    source.write_text("".join(f"{c}\n" for c in clients))
    done = pipe.cli(
        "enqueue", "--schedule", SCHEDULE, "--scheduled-for", slot(n).isoformat(), "--from-file", str(source)
    )
    assert done.returncode == 0, done.stderr


def computed(pipe: Pipeline, run: str) -> dict[str, dict[str, Any]]:
    rows = pipe.query("SELECT client_id, computed FROM client_results FINAL WHERE run_id = %(r)s", {"r": run})
    return {client: orjson.loads(text) for client, text in rows}


def stateful(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k.startswith(("bytes_sent_", "errors_"))}


def expected_second(client: str) -> dict[str, float]:
    """Run 2 (one minute after run 1) of a client seen in run 1."""
    rate = counter_rate(client)
    if client.startswith("reset-"):  # restarted 30 s before run 2: it counted 30 s since
        before_bytes, before_errors = counter_values(client, int(slot(1).timestamp()), RESET_AFTER)
        return {
            "bytes_sent_delta": 30.0 * rate - before_bytes,
            "bytes_sent_increase": 30.0 * rate,
            "bytes_sent_rate": 0.5 * rate,
            "bytes_sent_reason": float(RESET),
            "errors_delta": -before_errors,  # no whole minute since the restart: 0
            "errors_reason": float(RESET),
        }
    return {
        "bytes_sent_delta": 60.0 * rate,
        "bytes_sent_increase": 60.0 * rate,
        "bytes_sent_rate": float(rate),
        "bytes_sent_reason": 0.0,
        "errors_delta": 1.0,
        "errors_reason": 0.0,
    }


def wait_all(pipe: Pipeline, run: str, n: int) -> None:
    assert pipe.wait_rows(run, n, timeout=120) == n, pipe.log("processor")[-3000:]


PLAIN = [f"c{i}" for i in range(200)]
RESETS = [f"reset-{i}" for i in range(10)]
GAPS = [f"gap-{i}" for i in range(10)]


def test_two_runs_give_exact_increases_and_rates_and_every_reason(
    kafka_bootstrap: str, clickhouse_url: str, unique_name: str, tmp_path: Path
) -> None:
    pipe = stateful_pipeline(kafka_bootstrap, clickhouse_url, unique_name, tmp_path)
    try:
        pipe.start("processor")
        pipe.start("sink")
        pipe.wait_ready("processor", "sink")
        enqueue(pipe, 1, PLAIN + RESETS + GAPS)
        wait_all(pipe, run_id(1), 220)
        first = computed(pipe, run_id(1))
        first_sight = {"bytes_sent_reason": float(FIRST_SIGHT), "errors_reason": float(FIRST_SIGHT)}
        assert {c: stateful(v) for c, v in first.items()} == {c: first_sight for c in first}

        enqueue(pipe, 2, PLAIN + RESETS)  # the gap-* clients miss run 2
        wait_all(pipe, run_id(2), 210)
        second = computed(pipe, run_id(2))
        assert {c: stateful(v) for c, v in second.items()} == {c: expected_second(c) for c in PLAIN + RESETS}

        source = pipe.workdir / "adhoc.txt"
        source.write_text("c1\ngap-1\n")
        assert pipe.cli("enqueue", "--run-id", "adhoc-2", "--from-file", str(source)).returncode == 0
        wait_all(pipe, "adhoc-2", 2)
        unscheduled = {"bytes_sent_reason": float(UNSCHEDULED), "errors_reason": float(UNSCHEDULED)}
        assert {c: stateful(v) for c, v in computed(pipe, "adhoc-2").items()} == {
            "c1": unscheduled,
            "gap-1": unscheduled,
        }

        enqueue(pipe, 3, PLAIN + GAPS)
        wait_all(pipe, run_id(3), 210)
        third = computed(pipe, run_id(3))
        for client in PLAIN:  # the ad-hoc run changed nothing: run 3 is against run 2
            assert stateful(third[client]) == expected_second(client)
        for client in GAPS:  # run 2 missed: the whole two minutes, flagged as a gap
            rate = counter_rate(client)
            assert stateful(third[client]) == {
                "bytes_sent_delta": 120.0 * rate,
                "bytes_sent_increase": 120.0 * rate,
                "bytes_sent_rate": float(rate),
                "bytes_sent_reason": float(GAP),
                "errors_delta": 2.0,
                "errors_reason": float(GAP),
            }

        enqueue(pipe, 2, PLAIN + RESETS)  # run 2 again, after run 3: the same requests, handled twice
        wait_drained(pipe)
        assert pipe.stop("sink") == 0  # every result of the re-run stored
        # the re-run's rows (stored last, so FINAL shows them) are computed against run 1 again
        assert computed(pipe, run_id(2)) == second
        identical_duplicates(pipe, run_id(2))
        assert {c: stateful(v) for c, v in computed(pipe, run_id(3)).items()} == {
            c: stateful(v) for c, v in third.items()
        }
    finally:
        pipe.kill_all()


def wait_drained(pipe: Pipeline, timeout: float = 120) -> None:
    """Until the processor group has committed everything on the requests topic, then the sink group
    everything on the results topic."""
    settings = pipe.settings
    prefix = settings.topic_prefix
    deadline = time.monotonic() + timeout
    for group, topic in (
        (settings.processor_group, REQUESTS.name(prefix)),
        (settings.sink_group, RESULTS.name(prefix)),
    ):
        while sum(p.lag for p in partition_lags(settings, group, topic)) > 0:
            assert time.monotonic() < deadline, f"{group} still behind on {topic}"
            time.sleep(0.3)


def identical_duplicates(pipe: Pipeline, run: str) -> None:
    """Every stored copy of a client's result (a crash re-sends some) carries the same computed values."""
    rows = pipe.query(
        "SELECT client_id, uniqExact(computed), count() FROM client_results"
        " WHERE run_id = %(r)s GROUP BY client_id",
        {"r": run},
    )
    assert rows and all(distinct == 1 for _, distinct, _ in rows)


CRASH_CLIENTS = [f"c{i}" for i in range(2000)]


@pytest.mark.parametrize("point", ["after_poll", "after_fetch", "after_produce", "before_commit"])
def test_a_crash_in_the_second_run_changes_no_result(
    kafka_bootstrap: str, clickhouse_url: str, unique_name: str, tmp_path: Path, point: str
) -> None:
    pipe = stateful_pipeline(
        kafka_bootstrap,
        clickhouse_url,
        unique_name,
        tmp_path,
        KCOLLECT_CONSUME_BATCH="100",
        KCOLLECT_COMMIT_INTERVAL_SECONDS="0.1",
    )
    try:
        pipe.start("sink")
        pipe.start("processor")
        enqueue(pipe, 1, CRASH_CLIENTS)
        wait_all(pipe, run_id(1), len(CRASH_CLIENTS))
        assert pipe.stop("processor") == 0
        enqueue(pipe, 2, CRASH_CLIENTS)
        pipe.env["KCOLLECT_FAULT_AT"] = f"{point}:{2 if point == 'before_commit' else 4}"  # commits are fewer
        crashing = pipe.start("processor")
        assert crashing.wait(60) == EXIT_CODE, pipe.log("processor")[-3000:]
        del pipe.env["KCOLLECT_FAULT_AT"]
        pipe.procs.pop("processor")
        pipe.start("processor")
        wait_all(pipe, run_id(2), len(CRASH_CLIENTS))
        second = computed(pipe, run_id(2))
        assert {c: stateful(v) for c, v in second.items()} == {c: expected_second(c) for c in CRASH_CLIENTS}
        identical_duplicates(pipe, run_id(2))
    finally:
        pipe.kill_all()


def garbage(pipe: Pipeline) -> None:
    """Records in every changelog partition that are no state: not JSON, a history as a clock (a keyless
    record is refused by the broker on a compacted topic)."""
    settings = pipe.settings
    producer = BatchProducer(settings)
    tracker = DeliveryTracker()
    topic = STATE_CHANGELOG.name(settings.topic_prefix)
    for partition in range(settings.partitions):
        bad = [(b"fleet\x00c1", b"not json"), (b"fleet\x00", b'{"v": 1, "runs": []}')]
        producer.produce_keyed_to_partition(topic, partition, bad, tracker)
    assert producer.wait(tracker, 30) and not tracker.failed


def test_a_deleted_local_store_is_restored_from_the_changelog(
    kafka_bootstrap: str, clickhouse_url: str, unique_name: str, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    pipe = stateful_pipeline(
        kafka_bootstrap, clickhouse_url, unique_name, tmp_path, KCOLLECT_PROCESSOR_STORE_DIR=str(store)
    )
    try:
        pipe.start("sink")
        pipe.start("processor")
        enqueue(pipe, 1, PLAIN)
        wait_all(pipe, run_id(1), len(PLAIN))
        assert pipe.stop("processor") == 0
        assert list(store.rglob("p*.sqlite"))
        shutil.rmtree(store)
        garbage(pipe)
        pipe.start("processor")
        pipe.wait_ready("processor")
        enqueue(pipe, 2, PLAIN)
        wait_all(pipe, run_id(2), len(PLAIN))
        second = computed(pipe, run_id(2))
        assert {c: stateful(v) for c, v in second.items()} == {c: expected_second(c) for c in PLAIN}
        assert "restored:" in pipe.log("processor") and "not a state record, skipped" in pipe.log("processor")
    finally:
        pipe.kill_all()


GROUP_CLIENTS = [f"c{i}" for i in range(6000)]


def test_members_joining_and_leaving_mid_run_change_no_result(
    kafka_bootstrap: str, clickhouse_url: str, unique_name: str, tmp_path: Path
) -> None:
    pipe = stateful_pipeline(
        kafka_bootstrap,
        clickhouse_url,
        unique_name,
        tmp_path,
        latency_ms=300,  # one batch of 100 at a time: run 2 takes about 18 s
        KCOLLECT_CONSUME_BATCH="100",
        KCOLLECT_MAX_IN_FLIGHT_BATCHES="1",
        KCOLLECT_SUBSYSTEM_BATCH="100",
    )
    try:
        pipe.start("sink")
        pipe.launch("processor", ["processor"], env={"KCOLLECT_PROCESSOR_STORE_DIR": str(tmp_path / "a")})
        enqueue(pipe, 1, GROUP_CLIENTS)
        wait_all(pipe, run_id(1), len(GROUP_CLIENTS))
        # during run 2 a second member joins (started as run 2 is enqueued), then the first one leaves
        pipe.launch("second", ["processor"], env={"KCOLLECT_PROCESSOR_STORE_DIR": str(tmp_path / "b")})
        enqueue(pipe, 2, GROUP_CLIENTS)
        pipe.wait_ready("second")
        time.sleep(1.0)
        assert pipe.stored(run_id(2)) < len(GROUP_CLIENTS)  # still under way when the member joined
        assert pipe.stop("processor") == 0
        wait_all(pipe, run_id(2), len(GROUP_CLIENTS))
        second = computed(pipe, run_id(2))
        assert {c: stateful(v) for c, v in second.items()} == {c: expected_second(c) for c in GROUP_CLIENTS}
        identical_duplicates(pipe, run_id(2))
        restored = re.findall(r"restored: (\d+) changelog record", pipe.log("second"))
        assert restored and sum(map(int, restored)) > 0  # the state came with the partitions
    finally:
        pipe.kill_all()


def test_state_inspect_and_a_guarded_reset(
    kafka_bootstrap: str, clickhouse_url: str, unique_name: str, tmp_path: Path
) -> None:
    pipe = stateful_pipeline(kafka_bootstrap, clickhouse_url, unique_name, tmp_path)
    clients = PLAIN[:40]
    try:
        pipe.start("sink")
        pipe.start("processor")
        enqueue(pipe, 1, clients)
        enqueue(pipe, 2, clients)
        wait_all(pipe, run_id(2), len(clients))
        shown = pipe.cli("state", "inspect", "--client", "c3")
        assert shown.returncode == 0, shown.stderr
        [entry] = orjson.loads(shown.stdout)
        assert entry["schedule"] == SCHEDULE and [r["run_id"] for r in entry["runs"]] == [
            run_id(1),
            run_id(2),
        ]
        assert (
            entry["runs"][1]["values"]["bytes_sent"]
            == counter_values("c3", int(slot(2).timestamp()), None)[0]
        )
        assert "reasons" not in entry["runs"][0]  # what run 1 was computed against is not kept
        assert entry["runs"][1]["reasons"] == {"bytes_sent": ["ok"], "errors": ["ok"]}
        assert pipe.cli("state", "inspect", "--client", "nobody").returncode == 1

        doctor = pipe.cli("doctor", "--interval", "0.5", "--json")
        assert doctor.returncode == 0, doctor.stderr
        report = orjson.loads(doctor.stdout)
        facts = report["facts"]["state"]
        assert (
            facts["partitions"] == 4 and facts["records_total"] >= len(clients) and facts["restore_per_s"] > 0
        )
        assert any(f["title"].startswith("state: ") for f in report["findings"])  # small: restores are quick

        assert pipe.cli("state", "reset", "--schedule", SCHEDULE).returncode == 2  # no --yes
        running = pipe.cli("state", "reset", "--schedule", SCHEDULE, "--yes")
        assert running.returncode == 2 and "member" in running.stderr  # the processor is running
        dry = pipe.cli("state", "reset", "--schedule", SCHEDULE, "--dry-run", "--json")
        assert dry.returncode == 0 and orjson.loads(dry.stdout)["clients"] == len(clients)
        assert pipe.stop("processor") == 0
        done = pipe.cli("state", "reset", "--schedule", SCHEDULE, "--yes", "--json")
        assert done.returncode == 0, done.stderr
        deleted = orjson.loads(done.stdout)["deleted"]
        assert deleted >= len(clients)
        gone = pipe.cli("state", "inspect", "--client", "c3")
        assert gone.returncode == 1, (gone.stdout, done.stdout)
        pipe.start("processor")
        pipe.wait_ready("processor")
        # the clean stop left each store at its own last write: the restart reads only the tombstones
        [total] = re.findall(r"partition\(s\) restored in [\d.]+ s \((\d+) record", pipe.log("processor"))[
            -1:
        ]
        assert int(total) == deleted
        enqueue(pipe, 3, clients)
        wait_all(pipe, run_id(3), len(clients))
        first_sight = {"bytes_sent_reason": float(FIRST_SIGHT), "errors_reason": float(FIRST_SIGHT)}
        third = {c: stateful(v) for c, v in computed(pipe, run_id(3)).items()}
        assert third == dict.fromkeys(clients, first_sight), pipe.log("processor")[-6000:]
    finally:
        pipe.kill_all()
