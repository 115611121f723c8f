"""Enqueue under failure and load: a kill -9 mid-run completed by re-running the same command (one stored
row per client), and lag-based throttling that stalls while no processor runs and releases when one does."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from schemas.topics import REQUESTS
from streams.lag.probe import partition_lags
from streams.runs.manifests import read_manifests
from tests.integration.pipeline import ROOT, Pipeline, make_pipeline

pytestmark = pytest.mark.integration

RUN = "resume-20261123T120000Z"
SCHEDULE = ("--schedule", "resume", "--scheduled-for", "2026-11-23T12:00:00Z")


@pytest.fixture
def pipe(kafka_bootstrap: str, clickhouse_url: str, unique_name: str, tmp_path: Path) -> Iterator[Pipeline]:
    pipeline = make_pipeline(
        kafka_bootstrap,
        clickhouse_url,
        unique_name,
        tmp_path,
        KCOLLECT_SESSION_TIMEOUT_MS="2000",
        KCOLLECT_COMMIT_INTERVAL_SECONDS="0.2",
    )
    yield pipeline
    pipeline.kill_all()


def start_enqueue(pipe: Pipeline, *args: str, stdin: int | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "kcollect", "enqueue", *args],
        env=pipe.env,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=(pipe.workdir / "enqueue.err").open("ab"),
        cwd=ROOT,
    )


def requests_end(pipe: Pipeline) -> int:
    settings = pipe.settings
    return sum(p.end for p in partition_lags(settings, "nobody", REQUESTS.name(settings.topic_prefix)))


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_killed_enqueue_is_completed_by_running_the_same_command_again(pipe: Pipeline) -> None:
    ids = b"".join(b"client-%d\n" % i for i in range(30000))
    # A slow source: stdin fed by hand. Two chunks go in, then the source stalls and we kill -9.
    proc = start_enqueue(pipe, *SCHEDULE, "--from-file", "-", stdin=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(ids[: ids.index(b"client-20000\n")])
    proc.stdin.flush()
    wait_for(lambda: requests_end(pipe) >= 10000, 60, "the first chunk to be delivered")
    first = read_manifests(pipe.settings)[RUN]
    assert first.status == "enqueueing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    proc.stdin.close()
    assert proc.returncode == -signal.SIGKILL
    partial = requests_end(pipe)
    assert 10000 <= partial < 30000
    pipe.start("processor")
    pipe.start("sink")
    done = subprocess.run(
        [sys.executable, "-m", "kcollect", "enqueue", *SCHEDULE, "--from-file", "-", "--json"],
        env=pipe.env,
        input=ids,
        capture_output=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["run_id"] == RUN and summary["enqueued"] == summary["total"] == 30000
    manifest = read_manifests(pipe.settings)[RUN]
    assert manifest.status == "enqueued" and manifest.total == 30000
    assert manifest.requested_at_ms == first.requested_at_ms  # the re-run sent byte-identical requests
    assert requests_end(pipe) == partial + 30000
    assert pipe.wait_rows(RUN, 30000) == 30000
    time.sleep(1.5)  # let the re-sent copies be stored too
    final = pipe.query(
        "SELECT count(), uniqExact(client_id) FROM client_results FINAL WHERE run_id = %(r)s", {"r": RUN}
    )
    assert final[0] == (30000, 30000)
    raw = pipe.query("SELECT count() FROM client_results WHERE run_id = %(r)s", {"r": RUN})[0][0]
    assert raw >= 30000  # copies may sit unmerged; FINAL reads one row per (run_id, client_id)


def test_max_lag_stalls_without_processors_and_releases_when_they_run(pipe: Pipeline) -> None:
    proc = start_enqueue(pipe, "--run-id", "throttle-1", "--clients", "10000", "--max-lag", "2000", "--json")
    err = pipe.workdir / "enqueue.err"
    wait_for(lambda: "THROTTLED" in err.read_text(), 60, "the enqueue to report being throttled")
    time.sleep(2.5)  # stalled: still running, and never more than max-lag requests waiting
    assert proc.poll() is None
    assert requests_end(pipe) == 2000
    assert "processor lag 2,000 >= max 2,000" in err.read_text()
    pipe.start("processor")
    pipe.start("sink")
    assert proc.wait(120) == 0, err.read_text()
    assert proc.stdout is not None
    summary = json.loads(proc.stdout.read())
    assert summary["enqueued"] == 10000 and summary["throttled_seconds"] > 2
    assert pipe.wait_rows("throttle-1", 10000) == 10000
    lags = partition_lags(
        pipe.settings, pipe.settings.processor_group, REQUESTS.name(pipe.settings.topic_prefix)
    )
    assert sum(p.end for p in lags) == 10000


def test_broker_outage_mid_run_exits_6_with_the_unconfirmed_count(tmp_path: Path) -> None:
    from kcollect.localstack.stack import start_tansu, stop_process
    from streams.kafka.admin import create_topics
    from streams.settings.model import load_settings

    broker = start_tansu(tmp_path)  # our own broker: this test kills it
    try:
        env = dict(os.environ) | {
            "KCOLLECT_BOOTSTRAP_SERVERS": f"127.0.0.1:{broker.port}",
            "KCOLLECT_TOPIC_PREFIX": "outage.",
            "KCOLLECT_PARTITIONS": "2",
            "KCOLLECT_BROKER_TIMEOUT_SECONDS": "3",
            "PYTHONPATH": str(ROOT),
        }
        settings = load_settings(bootstrap_servers=env["KCOLLECT_BOOTSTRAP_SERVERS"], topic_prefix="outage.")
        create_topics(settings)
        proc = subprocess.Popen(
            [sys.executable, "-m", "kcollect", "enqueue", "--run-id", "outage-1", "--from-file", "-"],
            env=env,
            stdin=subprocess.PIPE,
            stderr=(tmp_path / "enqueue.err").open("wb"),  # a file: librdkafka logs a lot meanwhile
            cwd=ROOT,
        )
        assert proc.stdin is not None
        proc.stdin.write(b"".join(b"c-%d\n" % i for i in range(10000)))
        proc.stdin.flush()
        wait_for(  # the first chunk is produced and confirmed
            lambda: sum(p.end for p in partition_lags(settings, "nobody", "outage.requests")) >= 10000,
            60,
            "the first chunk to be delivered",
        )
        os.kill(broker.pid, signal.SIGKILL)
        started = time.monotonic()
        proc.stdin.write(b"".join(b"c-%d\n" % i for i in range(10000, 25000)))
        proc.stdin.close()
        assert proc.wait(60) == 6
        assert time.monotonic() - started < 30  # bounded by the broker timeout, never a hang
        stderr = (tmp_path / "enqueue.err").read_text()
        counts = re.search(r"(\d+) of (\d+) request\(s\) were not confirmed by the broker", stderr)
        assert counts is not None, stderr[-3000:]
        assert 0 < int(counts.group(1)) <= int(counts.group(2)) and "run the same command again" in stderr
        print(counts.group(0))
    finally:
        stop_process(broker)
