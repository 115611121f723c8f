"""`kcollect scheduler run` as real processes on the broker: two instances, a restart, pause/resume.

Every slot of the schedule must be enqueued exactly once: one ``enqueueing`` and one ``enqueued``
manifest record per run id on the runs topic (Tansu keeps every record: nothing is compacted away),
and exactly one request per client and run on the requests topic.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient

from kcollect.localstack.ports import free_port
from tests.integration.pipeline import ROOT

pytestmark = pytest.mark.integration
CLIENTS = 10


def read_topic(bootstrap: str, topic: str) -> list[dict[str, object]]:
    """Every record value of ``topic`` (JSON), read to the end of each partition."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    partitions = len(admin.list_topics(topic, timeout=10).topics[topic].partitions)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4().hex[:8]}",
                         "enable.partition.eof": True, "fetch.queue.backoff.ms": 20})  # fmt: skip
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    values: list[dict[str, object]] = []
    ended: set[int] = set()
    deadline = time.monotonic() + 30
    try:
        while len(ended) < partitions and time.monotonic() < deadline:
            for msg in consumer.consume(1000, 0.2):
                if msg.error() is not None:
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        ended.add(msg.partition())
                    continue
                values.append(orjson.loads(msg.value()))
    finally:
        consumer.close()
    return values


class Instances:
    def __init__(self, env: dict[str, str], workdir: Path, name: str) -> None:
        self.env, self.workdir, self.name = env, workdir, name
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "kcollect", *args], env=self.env, cwd=ROOT,
                              capture_output=True, text=True, timeout=60)  # fmt: skip

    def start(self, label: str, *extra: str) -> None:
        log = (self.workdir / f"{label}.log").open("ab")
        argv = [sys.executable, "-m", "kcollect", "scheduler", "run", "--name", self.name, "--every", "2s",
                "--clients", f"0-{CLIENTS - 1}", "--overlap", "allow", "--tick", "0.2", *extra]  # fmt: skip
        self.procs[label] = subprocess.Popen(
            argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
        )

    def stop(self, label: str) -> int:
        proc = self.procs.pop(label)
        proc.send_signal(signal.SIGTERM)
        return proc.wait(30)

    def log(self, label: str) -> str:
        return (self.workdir / f"{label}.log").read_text(errors="replace")

    def leader(self) -> str:
        """The running instance whose log last said it leads (and has not given it up since)."""
        for label in self.procs:
            text = self.log(label)
            if text.rfind("is the leader") > text.rfind("leadership given up"):
                return label
        raise AssertionError("no leader: " + " | ".join(self.log(label)[-500:] for label in self.procs))

    def kill_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


def test_two_schedulers_and_a_restart_enqueue_each_slot_once(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    env = dict(os.environ)
    env.update({"KCOLLECT_BOOTSTRAP_SERVERS": kafka_bootstrap, "KCOLLECT_TOPIC_PREFIX": f"{unique_name}.",
                "KCOLLECT_SESSION_TIMEOUT_MS": "2000", "KCOLLECT_STATE_DIR": str(tmp_path / "state"),
                "KCOLLECT_LOG_FORMAT": "json", "PYTHONPATH": str(ROOT)})  # fmt: skip
    env.pop("KCOLLECT_CLICKHOUSE_URL", None)
    runs = Instances(env, tmp_path, "every2s")
    http_port = free_port()
    assert runs.cli("topics", "create").returncode == 0
    try:
        runs.start("a", "--http-port", str(http_port))
        runs.start("b")
        time.sleep(9)
        health = urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=2)
        assert health.status == 200 and orjson.loads(health.read())["alive"]
        ready = urllib.request.urlopen(f"http://127.0.0.1:{http_port}/readyz", timeout=2)  # leader or standby
        assert ready.status == 200
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=2).read().decode()
        assert "kcollect_service_assigned_partitions" in metrics and "kcollect_scheduler_leader{" in metrics
        first = runs.leader()
        assert runs.stop(first) == 0, runs.log(first)  # the standby takes over
        runs.start("a2")  # the same command again: it stands by, then may lead
        time.sleep(6)
        paused = runs.cli("scheduler", "pause", "every2s")
        assert paused.returncode == 0, paused.stderr
        time.sleep(1)  # the pause record reaches the leader within a turn
        during_pause_from = time.time()
        time.sleep(4)
        during_pause_to = time.time()
        assert runs.cli("scheduler", "resume", "every2s").returncode == 0
        time.sleep(4)
        for label in list(runs.procs):
            assert runs.stop(label) == 0, runs.log(label)
    finally:
        runs.kill_all()

    manifests = read_topic(kafka_bootstrap, f"{unique_name}.runs")
    statuses = Counter((m["run_id"], m["status"]) for m in manifests)
    run_ids = sorted({str(m["run_id"]) for m in manifests})
    assert len(run_ids) >= 6, run_ids
    assert all(rid.startswith("every2s-") for rid in run_ids)
    for rid in run_ids:
        assert statuses[(rid, "enqueueing")] == 1, (rid, statuses)
        assert statuses[(rid, "enqueued")] == 1, (rid, statuses)
    requests = Counter(str(r["run_id"]) for r in read_topic(kafka_bootstrap, f"{unique_name}.requests"))
    assert requests == {rid: CLIENTS for rid in run_ids}
    # Slot times are whole multiples of 2 s; none falls inside the pause (1 s margin for a turn).
    slots = [m["requested_at_ms"] for m in manifests if m["status"] == "enqueued"]
    assert all(int(str(s)) % 2000 == 0 for s in slots)
    assert not [s for s in slots if during_pause_from + 1 < int(str(s)) / 1000 < during_pause_to - 1]
    logs = runs.log("a") + runs.log("b") + runs.log("a2")
    assert "the schedule is paused" in logs
    assert logs.count("is the leader") >= 2  # leadership moved at least once


def test_backfill_enqueues_missing_slots_once(kafka_bootstrap: str, unique_name: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KCOLLECT_")}
    env.update({"KCOLLECT_BOOTSTRAP_SERVERS": kafka_bootstrap, "KCOLLECT_TOPIC_PREFIX": f"{unique_name}.",
                "KCOLLECT_STATE_DIR": str(tmp_path / "state"), "PYTHONPATH": str(ROOT)})  # fmt: skip
    runs = Instances(env, tmp_path, "nightly")
    assert runs.cli("topics", "create").returncode == 0
    window = ["--name", "nightly", "--cron", "0 2 * * *", "--clients", "0-4"]
    first = runs.cli(
        "scheduler", "backfill", "--from", "2026-11-20T00:00:00Z", "--to", "2026-11-21T23:59Z", *window
    )
    assert first.returncode == 0, first.stderr
    assert first.stdout.split() == [
        "nightly-20261120T020000Z",
        "enqueued",
        "nightly-20261121T020000Z",
        "enqueued",
    ]
    again = runs.cli(
        "scheduler", "backfill", "--from", "2026-11-20T00:00Z", "--to", "2026-11-22T03:00Z", *window
    )
    assert again.returncode == 0, again.stderr
    assert [line.split("\t")[1] for line in again.stdout.splitlines()] == ["exists", "exists", "enqueued"]
    bad = runs.cli("scheduler", "backfill", "--from", "2026-11-22", "--to", "2026-11-20", *window)
    assert bad.returncode == 2 and "--to" in bad.stderr
    requests = Counter(str(r["run_id"]) for r in read_topic(kafka_bootstrap, f"{unique_name}.requests"))
    assert requests == {f"nightly-202611{d}T020000Z": 5 for d in ("20", "21", "22")}
    manifests = [m for m in read_topic(kafka_bootstrap, f"{unique_name}.runs") if m["status"] == "enqueued"]
    assert {m["run_id"]: m["requested_at_ms"] for m in manifests} == {
        f"nightly-202611{d}T020000Z": int(datetime(2026, 11, int(d), 2, tzinfo=UTC).timestamp() * 1000)
        for d in ("20", "21", "22")
    }
