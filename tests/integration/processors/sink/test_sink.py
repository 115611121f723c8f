"""The sink on the real broker and ClickHouse, as a real `kcollect sink` process: exactly one row per
client under FINAL through a crash between insert and commit and a full replay; bad rows dead-lettered
while their batch-mates land; a trickle flushed by the time window; run completion via `kcollect runs`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer

from schemas.models import RunManifest
from streams.kafka.dead_letter import header_map
from streams.kafka.producer import BatchProducer
from streams.runs.checker import watch_recovery
from streams.runs.manifests import publish_manifest
from streams.steps.faults import EXIT_CODE
from tests.integration.pipeline import Pipeline, make_pipeline
from tests.integration.test_pipeline import consume_all

pytestmark = pytest.mark.integration

REQUESTED_AT_MS = 1_763_900_000_000  # 2025-11-23


def result(run_id: str, client_id: str, **changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "v": 1,
        "run_id": run_id,
        "client_id": client_id,
        "requested_at_ms": REQUESTED_AT_MS,
        "attempt": 0,
        "collected_at_ms": REQUESTED_AT_MS + 1000,
        "status": "ok",
        "metrics": {"cpu": float(len(client_id)), "mem": 2.5},
        "missing": [],
        "computed": {"score": 1.0},
    }
    record.update(changes)
    return record


def produce(pipe: Pipeline, records: list[tuple[bytes, bytes]], partition: int | None = None) -> None:
    settings = pipe.settings
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap(), "linger.ms": 5})
    topic = f"{settings.topic_prefix}results"
    for key, value in records:
        if partition is None:
            producer.produce(topic, value, key)
        else:
            producer.produce(topic, value, key, partition=partition)
    assert producer.flush(30) == 0


def produce_results(pipe: Pipeline, run_id: str, clients: range) -> None:
    produce(pipe, [(str(c).encode(), orjson.dumps(result(run_id, str(c)))) for c in clients])


def counts(pipe: Pipeline, run_id: str) -> tuple[int, int, int]:
    """(rows under FINAL, distinct clients under FINAL, rows ever inserted).

    Rows ever inserted come from ``run_summary`` (``deliveries``): background merges of the
    ReplacingMergeTree drop duplicates, so a raw count() does not show them reliably.
    """
    final = pipe.query(
        "SELECT count(), uniqExact(client_id) FROM client_results FINAL WHERE run_id = %(r)s", {"r": run_id}
    )[0]
    inserted = pipe.query("SELECT deliveries FROM run_summary_final WHERE run_id = %(r)s", {"r": run_id})
    return int(final[0]), int(final[1]), int(inserted[0][0]) if inserted else 0


def wait_raw(pipe: Pipeline, run_id: str, at_least: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    raw = 0
    while time.monotonic() < deadline:
        raw = counts(pipe, run_id)[2]
        if raw >= at_least:
            return raw
        time.sleep(0.2)
    return raw


def checksum(pipe: Pipeline, run_id: str) -> int:
    sql = (
        "SELECT sum(cityHash64(client_id, status, metrics, computed, attempt, collected_at)) "
        "FROM client_results FINAL WHERE run_id = %(r)s"
    )
    return int(pipe.query(sql, {"r": run_id})[0][0])


def publish(pipe: Pipeline, run_id: str, total: int) -> None:
    settings = pipe.settings
    manifest = RunManifest(
        run_id=run_id,
        source="test",
        status="enqueued",
        total=total,
        requested_at_ms=REQUESTED_AT_MS,
        created_at_ms=REQUESTED_AT_MS,
    )
    publish_manifest(settings, BatchProducer(settings), manifest)


@pytest.fixture
def pipe(kafka_bootstrap: str, clickhouse_url: str, unique_name: str, tmp_path: Path) -> Iterator[Pipeline]:
    pipeline = make_pipeline(
        kafka_bootstrap,
        clickhouse_url,
        unique_name,
        tmp_path,
        KCOLLECT_SESSION_TIMEOUT_MS="2000",
        KCOLLECT_SINK_BATCH_ROWS="1000",
        KCOLLECT_SINK_BATCH_SECONDS="0.5",
        KCOLLECT_CONSUME_BATCH="500",
    )
    yield pipeline
    pipeline.kill_all()


def test_crash_after_insert_then_restart_and_replay_keep_one_row_per_client(pipe: Pipeline) -> None:
    produce_results(pipe, "crash-1", range(8000))
    pipe.env["KCOLLECT_FAULT_AT"] = "after_insert:3"
    pipe.env["KCOLLECT_SINK_BATCH_SECONDS"] = "60"  # inserts close by their rows only, not by a slow clock
    crashed = pipe.start("sink")
    assert crashed.wait(60) == EXIT_CODE, pipe.log("sink")
    assert "crash point after_insert reached (3)" in pipe.log("sink")
    del pipe.env["KCOLLECT_FAULT_AT"]
    pipe.env["KCOLLECT_SINK_BATCH_SECONDS"] = "0.5"
    raw_at_crash = counts(pipe, "crash-1")[2]
    assert 3000 <= raw_at_crash < 8000  # three inserts of at least 1000 rows landed, nothing after

    pipe.start("sink")
    assert pipe.wait_rows("crash-1", 8000, timeout=60) == 8000
    time.sleep(1.0)  # let a duplicate-producing bug show, if any
    final, distinct, raw = counts(pipe, "crash-1")
    assert final == distinct == 8000
    assert raw > 8000, "the window inserted before the crash was never committed, so it comes again"
    assert pipe.stop("sink") == 0
    before = checksum(pipe, "crash-1")

    # Replay the whole topic with a new group: every row comes again, FINAL does not change.
    pipe.env["KCOLLECT_SINK_GROUP"] = pipe.env["KCOLLECT_SINK_GROUP"] + "-replay"
    pipe.start("sink")
    assert wait_raw(pipe, "crash-1", raw + 8000) >= raw + 8000
    assert pipe.stop("sink") == 0
    assert counts(pipe, "crash-1")[:2] == (8000, 8000)
    assert checksum(pipe, "crash-1") == before
    summary = pipe.query(
        "SELECT clients, ok_clients, deliveries FROM run_summary_final WHERE run_id = 'crash-1'"
    )
    assert summary[0][:2] == (8000, 8000) and summary[0][2] >= raw + 8000


def test_crash_before_commit_then_restart(pipe: Pipeline) -> None:
    produce_results(pipe, "commit-1", range(3000))
    pipe.env["KCOLLECT_FAULT_AT"] = "before_commit:1"
    crashed = pipe.start("sink")
    assert crashed.wait(60) == EXIT_CODE, pipe.log("sink")
    assert "crash point before_commit reached (1)" in pipe.log("sink")
    del pipe.env["KCOLLECT_FAULT_AT"]
    inserted_before = counts(pipe, "commit-1")[2]
    assert inserted_before > 0  # inserted and acknowledged, never committed
    pipe.start("sink")
    assert pipe.wait_rows("commit-1", 3000, timeout=60) == 3000
    assert wait_raw(pipe, "commit-1", inserted_before + 3000) >= inserted_before + 3000  # all again
    assert counts(pipe, "commit-1")[:2] == (3000, 3000)


def test_bad_rows_of_a_result_batch_are_dead_lettered_alone(pipe: Pipeline) -> None:
    run = "batch-bad-1"
    clients = [f"c{i}" for i in range(40)]
    clients[7] = ""  # refused by the decoder's row check
    requested = [REQUESTED_AT_MS] * 40
    requested[23] = 253402300799999  # fits the model, refused by ClickHouse (DateTime overflow)
    batch = {
        "v": 1,
        "kind": "result_batch",
        "collected_at_ms": REQUESTED_AT_MS + 1000,
        "run_id": [run] * 40,
        "client_id": clients,
        "requested_at_ms": requested,
        "attempt": [0] * 40,
        "metric_names": ["cpu", "mem"],
        "metrics": [[float(i) for i in range(40)], [None if i == 5 else 1.5 for i in range(40)]],
        "computed_names": [],
        "computed": [],
    }
    produce(pipe, [(b"", orjson.dumps(batch)), (b"after", orjson.dumps(result(run, "after")))], partition=0)
    pipe.start("sink")
    assert pipe.wait_rows(run, 39, timeout=60) == 39
    settings = pipe.settings
    dead = consume_all(settings.kafka_bootstrap(), f"{settings.topic_prefix}results.dlq", 2)
    by_row = {
        header_map(m.headers())["batch_row"]: (m.key(), orjson.loads(m.value()), m.headers()) for m in dead
    }
    assert sorted(by_row) == ["23", "7"]
    key, row, raw = by_row["7"]
    headers = header_map(raw)
    assert key == b"" and row["client_id"] == "" and headers["stage"] == "sink-decode"
    key, row, raw = by_row["23"]
    headers = header_map(raw)
    assert key == b"c23" and row["requested_at_ms"] == 253402300799999 and headers["stage"] == "sink-insert"
    assert headers["run_id"] == run and headers["original_offset"] == "0"
    assert headers["original_partition"] == "0"
    assert row["metrics"] == {"cpu": 23.0, "mem": 1.5} and row["status"] == "ok"
    assert counts(pipe, run)[:2] == (39, 39)
    stored = (
        "SELECT client_id, status, missing, metric_names, metric_values, metrics "
        "FROM client_results FINAL WHERE run_id = %(r)s"
    )
    by_client = {r[0]: r[1:] for r in pipe.query(stored, {"r": run})}
    assert by_client["c5"][:4] == ("partial", ["mem"], ["cpu"], [5.0])
    assert by_client["c6"][:4] == ("ok", [], ["cpu", "mem"], [6.0, 1.5])
    assert orjson.loads(by_client["c6"][4]) == {"cpu": 6.0, "mem": 1.5}  # the JSON text, as an ALIAS


def test_a_row_clickhouse_refuses_in_a_fast_path_batch_is_dead_lettered_alone(pipe: Pipeline) -> None:
    # Every row passes the fast path (its values are one FloatRows per column), one row's time overflows
    # ClickHouse's DateTime: the window spans two months (split by row) and the bisection picks rows
    # one by one; the stored rows keep their own values.
    run = "fast-bad-1"
    requested = [REQUESTED_AT_MS] * 40
    requested[23] = 253402300799999
    batch = {
        "v": 1,
        "kind": "result_batch",
        "collected_at_ms": REQUESTED_AT_MS + 1000,
        "run_id": [run] * 40,
        "client_id": [f"c{i}" for i in range(40)],
        "requested_at_ms": requested,
        "attempt": [0] * 40,
        "metric_names": ["cpu", "mem"],
        "metrics": [[float(i) for i in range(40)], [i + 0.5 for i in range(40)]],
        "computed_names": ["sum"],
        "computed": [[2 * i + 0.5 for i in range(40)]],
    }
    produce(pipe, [(b"", orjson.dumps(batch))], partition=0)
    pipe.start("sink")
    assert pipe.wait_rows(run, 39, timeout=60) == 39
    settings = pipe.settings
    (dead,) = consume_all(settings.kafka_bootstrap(), f"{settings.topic_prefix}results.dlq", 1)
    headers = header_map(dead.headers())
    assert headers["batch_row"] == "23" and headers["stage"] == "sink-insert" and dead.key() == b"c23"
    assert orjson.loads(dead.value())["metrics"] == {"cpu": 23.0, "mem": 23.5}
    stored = (
        "SELECT client_id, metric_names, metric_values, computed_names, computed_values "
        "FROM client_results FINAL WHERE run_id = %(r)s"
    )
    rows = {r[0]: r[1:] for r in pipe.query(stored, {"r": run})}
    assert sorted(rows) == sorted(f"c{i}" for i in range(40) if i != 23)
    for i in (0, 22, 24, 39):
        assert rows[f"c{i}"] == (["cpu", "mem"], [float(i), i + 0.5], ["sum"], [2 * i + 0.5])


def test_bad_rows_are_dead_lettered_and_their_batch_mates_land(pipe: Pipeline) -> None:
    run = "bad-1"
    good = [(str(i).encode(), orjson.dumps(result(run, str(i)))) for i in range(300)]
    text = {"cpu": 1.0, "os": "linux", "tags": ["a", "b"], "up": True}  # metrics that are not numbers
    good[5] = (b"5", orjson.dumps(result(run, "5", metrics=text)))
    bad = {
        b"metric-str": orjson.dumps(result(run, "metric-str", metrics={"cpu": [["high"]]})),  # too deep
        b"id-empty": orjson.dumps(result(run, "")),
        b"time-overflow": orjson.dumps(result(run, "time-overflow", collected_at_ms=253402300799999)),
        b"not-json": b"{not json",
    }
    records = [*good[:100], (b"metric-str", bad[b"metric-str"]), *good[100:200]]
    records += [(b"time-overflow", bad[b"time-overflow"]), (b"id-empty", bad[b"id-empty"])]
    records += [*good[200:], (b"not-json", bad[b"not-json"])]
    produce(pipe, records, partition=0)
    pipe.start("sink")
    assert pipe.wait_rows(run, 300, timeout=60) == 300
    settings = pipe.settings
    dead = consume_all(settings.kafka_bootstrap(), f"{settings.topic_prefix}results.dlq", 4)
    by_key = {m.key(): (m.value(), header_map(m.headers())) for m in dead}
    assert sorted(by_key) == sorted(bad)
    for key, (value, headers) in by_key.items():
        assert value == bad[key]
        assert headers["original_topic"] == f"{settings.topic_prefix}results"
        assert headers["original_partition"] == "0" and headers["error_message"]
        assert headers.get("run_id") == (None if key == b"not-json" else run)
    assert by_key[b"time-overflow"][1]["stage"] == "sink-insert"
    assert by_key[b"time-overflow"][1]["error_class"] == "TypeMismatchError"
    for key in (b"metric-str", b"id-empty", b"not-json"):
        assert by_key[key][1]["stage"] == "sink-decode"
        assert by_key[key][1]["error_class"] == "CodecError"
    assert counts(pipe, run)[:2] == (300, 300)
    stored = pipe.query(
        "SELECT metric_names, metric_values, text_names, text_values FROM client_results FINAL "
        "WHERE run_id = %(r)s AND client_id = '5'",
        {"r": run},
    )
    assert stored == [(["cpu"], [1.0], ["os", "tags", "up"], ['"linux"', '["a","b"]', "true"])]

    # Run completion: 300 stored + 3 dead-lettered clients with a run id = the manifest's 303.
    publish(pipe, run, 303)
    done = pipe.cli("runs", "status", run, "--json")
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["total"] == 303 and status["stored"] == 300 and status["dead_lettered"] == 3
    assert status["complete"] is True and status["pending"] == 0
    reasons = status["dead_letter_reasons"]
    assert sum(reasons.values()) == 3 and reasons["sink-insert"] == 1 and reasons["sink-decode"] == 2
    assert status["ok"] == 300 and status["partial"] == 0
    assert status["started"] and status["finished"] and status["duration_s"] is not None
    text = pipe.cli("runs", "status", run).stdout
    assert "(ok 300, partial 0)" in text and "sink-insert 1" in text and "took" in text
    waited = pipe.cli("runs", "status", run, "--wait", "--timeout", "5")
    assert waited.returncode == 0, waited.stderr
    publish(pipe, "bad-2", 10)
    short = pipe.cli("runs", "status", "bad-2", "--wait", "--timeout", "1", "--json")
    assert short.returncode == 1 and json.loads(short.stdout)["complete"] is False
    listed = pipe.cli("runs", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    runs = {r["run_id"]: r for r in map(json.loads, listed.stdout.splitlines())}
    assert runs[run]["complete"] and runs["bad-2"]["pending"] == 10
    incomplete = pipe.cli("runs", "list", "--json", "--state", "incomplete").stdout.splitlines()
    assert "bad-2" in {json.loads(line)["run_id"] for line in incomplete}
    assert run not in {json.loads(line)["run_id"] for line in incomplete}
    assert pipe.cli("runs", "list", "--schedule", "nightly").stdout == ""
    assert pipe.cli("runs", "list", "--state", "bogus").returncode == 2
    assert "ClickHouse refused the result" in pipe.log("sink")


def test_a_trickle_is_flushed_by_the_time_window(pipe: Pipeline) -> None:
    pipe.env["KCOLLECT_SINK_BATCH_ROWS"] = "100000"
    pipe.env["KCOLLECT_SINK_BATCH_SECONDS"] = "1.0"
    pipe.start("sink")
    pipe.wait_ready("sink")
    for expected in (3, 5):
        produce_results(pipe, "trickle-1", range(expected - (2 if expected == 5 else 3), expected))
        started = time.monotonic()
        assert pipe.wait_rows("trickle-1", expected, timeout=10) == expected
        assert time.monotonic() - started < 5.0


def test_windows_of_garbage_alone_are_dead_lettered_and_committed(pipe: Pipeline) -> None:
    """The issue's reproduction: `not json` on partitions 0 and 3 before a run. Each is alone in its
    partition's first window (a window without one valid row); both are dead-lettered and committed,
    and every row of the run behind them lands."""
    run = "garbage-first-1"
    produce(pipe, [(b"junk-0", b"not json")], partition=0)
    produce(pipe, [(b"junk-3", b"not json")], partition=3)
    pipe.start("sink")
    pipe.wait_ready("sink")
    settings = pipe.settings
    dead = consume_all(settings.kafka_bootstrap(), f"{settings.topic_prefix}results.dlq", 2)
    assert sorted(m.key() for m in dead) == [b"junk-0", b"junk-3"]
    produce_results(pipe, run, range(2000))
    assert pipe.wait_rows(run, 2000, timeout=60) == 2000
    assert "IndexError" not in pipe.log("sink")
    publish(pipe, run, 2000)
    status = json.loads(pipe.cli("runs", "status", run, "--json").stdout)
    assert status["complete"] is True and status["dead_lettered"] == 0, status
    sink_lag = {settings.sink_group: f"{settings.topic_prefix}results"}
    assert watch_recovery(settings, sink_lag, 30) is not None, "the garbage's offsets must be committed"
