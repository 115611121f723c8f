"""kcollect lag on the real broker: exact lag (also after large batches, which make Tansu's ListOffsets
under-report), time lag from record timestamps, STALLED and back to OK, and the CLI's JSON output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from streams.lag.collector import LagCollector, LagMonitor
from streams.settings.librdkafka import broker_is_tansu
from tests.integration.lagkit import commit, lag_settings, make_topic, produce, sample_lag

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[4]


def test_exact_lag_on_several_partitions_with_large_batches(kafka_bootstrap: str, unique_name: str) -> None:
    topic, group = f"{unique_name}.requests", f"{unique_name}-g"
    make_topic(kafka_bootstrap, topic, 3)
    ends = produce(kafka_bootstrap, topic, {0: 30000, 1: 25000}, batched=True)
    ends.update(produce(kafka_bootstrap, topic, {2: 7}))
    commit(kafka_bootstrap, group, {(topic, 0): 12345, (topic, 2): 7})
    settings = lag_settings(kafka_bootstrap, f"{unique_name}.")
    if broker_is_tansu(settings):  # the quirk the exact end offsets work around is really triggered
        reader = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": "x"})
        assert reader.get_watermark_offsets(TopicPartition(topic, 0), 10, cached=False)[1] < ends[0]
        reader.close()
    snapshot = sample_lag(settings, samples=1)
    rows = {(r.group, r.partition): r for r in snapshot.rows}
    assert {g for g, _ in rows} == {group}
    assert [(rows[group, p].committed, rows[group, p].end, rows[group, p].lag) for p in range(3)] == [
        (12345, ends[0], ends[0] - 12345),
        (None, ends[1], ends[1]),
        (7, 7, 0),
    ]
    assert rows[group, 2].lag_seconds == 0.0
    # the record at offset 12345 sits inside a 10,000-record batch: its timestamp is still found
    assert all(rows[group, p].lag_seconds is not None and rows[group, p].lag_seconds < 60 for p in (0, 1))
    assert snapshot.ends == {(topic, p): ends[p] for p in range(3)}


def test_time_lag_from_the_record_at_the_committed_offset(kafka_bootstrap: str, unique_name: str) -> None:
    topic, group = f"{unique_name}.results", f"{unique_name}-sink"
    make_topic(kafka_bootstrap, topic, 2)
    now_ms = int(time.time() * 1000)
    produce(kafka_bootstrap, topic, {0: 10, 1: 10}, timestamp_ms=now_ms - 300_000)
    produce(kafka_bootstrap, topic, {0: 10, 1: 10}, timestamp_ms=now_ms - 120_000)
    commit(kafka_bootstrap, group, {(topic, 0): 10, (topic, 1): 20})
    rows = {r.partition: r for r in sample_lag(lag_settings(kafka_bootstrap, f"{unique_name}."), 1).rows}
    assert rows[0].lag == 10 and rows[0].lag_seconds is not None
    assert 118 <= rows[0].lag_seconds <= 135  # the oldest unconsumed record is the 120 s old one
    assert rows[1].lag == 0 and rows[1].lag_seconds == 0.0


def test_status_stalled_while_a_member_stops_committing_then_ok(
    kafka_bootstrap: str, unique_name: str
) -> None:
    topic, group = f"{unique_name}.requests", f"{unique_name}-processor"
    make_topic(kafka_bootstrap, topic, 2)
    produce(kafka_bootstrap, topic, {0: 100, 1: 100})
    settings = lag_settings(kafka_bootstrap, f"{unique_name}.")
    member = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 2000,
            "heartbeat.interval.ms": 400,
            "fetch.queue.backoff.ms": 20,
        }
    )
    member.subscribe([topic])
    monitor = LagMonitor(LagCollector(settings, [group], [topic]), window=3)
    try:
        _consume(member, 200)  # the member has everything but commits only 20 per partition, then stops
        member.commit(offsets=[TopicPartition(topic, p, 20) for p in (0, 1)], asynchronous=False)
        statuses = [_statuses(monitor) for _ in range(3)]
        assert statuses[-1] == {"STALLED"}, statuses
        rows = monitor.sample().rows
        assert [(r.committed, r.lag, r.group_state) for r in rows] == [(20, 80, "stable")] * 2
        member.commit(offsets=[TopicPartition(topic, p, 100) for p in (0, 1)], asynchronous=False)  # resumes
        assert _statuses(monitor) == {"OK"}
        assert sum(r.lag for r in monitor.sample().rows) == 0
    finally:
        monitor.close()
        member.close()


def _consume(member: Consumer, at_least: int) -> int:
    seen, deadline = 0, time.monotonic() + 30
    while seen < at_least and time.monotonic() < deadline:
        seen += sum(1 for m in member.consume(100, 0.2) if m.error() is None)
    assert seen >= at_least
    return seen


def _statuses(monitor: LagMonitor) -> set[str]:
    snapshot = monitor.sample()
    time.sleep(0.3)
    return {r.status for r in snapshot.rows}


def test_cli_json(kafka_bootstrap: str, unique_name: str) -> None:
    topic, group = f"{unique_name}.requests", f"{unique_name}-processor"
    make_topic(kafka_bootstrap, topic, 2)
    make_topic(kafka_bootstrap, f"other{unique_name}", 1)  # not under the prefix: not shown
    produce(kafka_bootstrap, topic, {0: 5, 1: 3})
    commit(kafka_bootstrap, group, {(topic, 0): 2, (topic, 1): 3})
    commit(kafka_bootstrap, f"{unique_name}-other", {(f"other{unique_name}", 0): 0})
    env = dict(os.environ, PYTHONPATH=str(ROOT), KCOLLECT_BOOTSTRAP_SERVERS=kafka_bootstrap)
    env["KCOLLECT_TOPIC_PREFIX"] = f"{unique_name}."
    done = subprocess.run(
        [sys.executable, "-m", "kcollect", "lag", "--json", "--samples", "2"],
        env=env, capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [(r["group"], r["topic"], r["partition"], r["committed"], r["end"], r["lag"]) for r in rows] == [
        (group, topic, 0, 2, 5, 3),
        (group, topic, 1, 3, 3, 0),
    ]
    assert rows[0]["status"] == "STOPPED"  # lag and an empty group: nobody consumes
    assert rows[1]["status"] == "OK" and rows[1]["lag_seconds"] == 0.0
    assert rows[0]["lag_seconds"] is not None and 0 <= rows[0]["lag_seconds"] < 60
    table = subprocess.run(
        [sys.executable, "-m", "kcollect", "lag", "--samples", "1", "--group", group],
        env=env, capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert table.returncode == 0, table.stderr
    assert "STOPPED" in table.stdout and group in table.stdout
    assert max(len(line) for line in table.stdout.splitlines()) <= 120
