"""`kcollect enqueue` from every source, end to end: requests through a real processor and sink into
ClickHouse, checked under FINAL; bad lines, duplicates, --strict, --dry-run and the error exits."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition

from schemas.topics import REQUESTS
from streams.lag.probe import partition_lags
from streams.runs.manifests import read_manifests
from tests.integration.pipeline import ROOT, Pipeline, make_pipeline

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pipe(
    kafka_bootstrap: str, clickhouse_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    """One isolated pipeline for the module, processor and sink running."""
    name = "t" + uuid.uuid4().hex[:10]
    pipeline = make_pipeline(
        kafka_bootstrap,
        clickhouse_url,
        name,
        tmp_path_factory.mktemp("enqueue"),
        KCOLLECT_SESSION_TIMEOUT_MS="2000",
    )
    pipeline.start("processor")
    pipeline.start("sink")
    pipeline.wait_ready("processor", "sink")
    yield pipeline
    pipeline.kill_all()


def enqueue(
    pipe: Pipeline, *args: str, stdin: str | bytes | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    data = stdin.encode() if isinstance(stdin, str) else stdin
    done = subprocess.run(
        [sys.executable, "-m", "kcollect", "enqueue", *args],
        env=pipe.env | env,
        input=data,
        capture_output=True,
        timeout=120,
        cwd=ROOT,
    )
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())


def stored(pipe: Pipeline, run_id: str) -> list[str]:
    rows = pipe.query("SELECT client_id FROM client_results FINAL WHERE run_id = %(r)s", {"r": run_id})
    return sorted(r[0] for r in rows)


def requests_end(pipe: Pipeline) -> int:
    settings = pipe.settings
    return sum(p.end for p in partition_lags(settings, "nobody", REQUESTS.name(settings.topic_prefix)))


def requests_of(pipe: Pipeline, run_id: str) -> dict[str, list[bytes]]:
    """Every request of ``run_id`` on the requests topic, read to the end: client id -> its values."""
    settings = pipe.settings
    topic = REQUESTS.name(settings.topic_prefix)
    ends = {p.partition: p.end for p in partition_lags(settings, "nobody", topic)}
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap(), "group.id": f"r-{uuid.uuid4().hex}",
                         "enable.partition.eof": True, "fetch.queue.backoff.ms": 20})  # fmt: skip
    consumer.assign([TopicPartition(topic, partition, 0) for partition, end in ends.items() if end > 0])
    found: dict[str, list[bytes]] = {}
    ended = {partition for partition, end in ends.items() if end == 0}
    deadline = time.monotonic() + 60
    try:
        while len(ended) < len(ends) and time.monotonic() < deadline:
            for msg in consumer.consume(5000, 0.2):
                if msg.error() is not None:
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        ended.add(msg.partition())
                    continue
                if msg.offset() >= ends[msg.partition()] - 1:
                    ended.add(msg.partition())
                if orjson.loads(msg.value())["run_id"] == run_id:
                    found.setdefault(msg.key().decode(), []).append(msg.value())
    finally:
        consumer.close()
    assert len(ended) == len(ends), "the requests topic was not read to its end"
    return found


def test_range_source_end_to_end(pipe: Pipeline) -> None:
    done = enqueue(pipe, "--run-id", "range-1", "--clients", "1000-2999", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["run_id"] == "range-1"
    assert (summary["enqueued"], summary["total"], summary["skipped_invalid"], summary["duplicates"]) == (
        2000,
        2000,
        0,
        0,
    )
    assert summary["seconds"] > 0
    assert pipe.wait_rows("range-1", 2000) == 2000
    assert stored(pipe, "range-1") == sorted(str(i) for i in range(1000, 3000))
    manifest = read_manifests(pipe.settings)["range-1"]
    assert manifest.status == "enqueued" and manifest.total == 2000 and manifest.finished_at_ms
    assert "enqueue range-1: read 2,000/2,000" in done.stderr  # not a TTY: plain progress lines


def test_file_with_bad_lines_and_duplicates(pipe: Pipeline, tmp_path: Path) -> None:
    good = [f"host-{i}" for i in range(300)]
    bad = ["", "x" * 129, "bell\x07", "   ", "\x00nul"] * 3  # 15 bad lines
    lines = good[:150] + bad + good[150:] + good[:40]  # 40 duplicates
    path = tmp_path / "ids.txt"
    path.write_bytes("\n".join(lines).encode() + b"\n\xff\xfebytes\n")  # and one line that is not UTF-8
    done = enqueue(pipe, "--run-id", "file-1", "--from-file", str(path), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["total"], summary["skipped_invalid"], summary["duplicates"]) == (300, 16, 40)
    assert summary["bad_lines"][:3] == [
        {"line": 151, "reason": "empty"},
        {"line": 152, "reason": "over 128 characters"},
        {"line": 153, "reason": "unprintable character"},
    ]
    assert len(summary["bad_lines"]) == 10
    assert "skipped 16 invalid line(s): line 151 (empty), line 152 (over 128 characters)" in done.stderr
    assert ", and 6 more" in done.stderr
    assert pipe.wait_rows("file-1", 300) == 300
    assert stored(pipe, "file-1") == sorted(good)


def test_csv_and_stdin(pipe: Pipeline, tmp_path: Path) -> None:
    csv_text = 'region,client_id,owner\neu,c-1,a\nus,c-2,b\nshort\neu,c-1,c\nap,"c,3",d\n'
    path = tmp_path / "ids.csv"
    path.write_text(csv_text)
    done = enqueue(pipe, "--run-id", "csv-1", "--from-file", str(path), "--column", "client_id", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["total"], summary["skipped_invalid"], summary["duplicates"]) == (3, 1, 1)
    assert summary["bad_lines"] == [{"line": 4, "reason": "no column client_id"}]
    from_stdin = enqueue(
        pipe, "--run-id", "stdin-1", "--from-file", "-", "--column", "client_id", "--json", stdin=csv_text
    )
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert json.loads(from_stdin.stdout)["total"] == 3
    plain = enqueue(pipe, "--run-id", "stdin-2", "--from-file", "-", stdin="a\nb\n\nb\nc\n")
    assert plain.returncode == 0, plain.stderr
    assert "enqueued 3 request(s) from stdin" in plain.stdout and "1 duplicate(s)" in plain.stdout
    for run_id in ("csv-1", "stdin-1"):
        assert pipe.wait_rows(run_id, 3) == 3
        assert stored(pipe, run_id) == ["c,3", "c-1", "c-2"]
    assert pipe.wait_rows("stdin-2", 3) == 3
    missing = enqueue(pipe, "--run-id", "csv-2", "--from-file", str(path), "--column", "nope")
    assert missing.returncode == 2 and "no column 'nope'" in missing.stderr


def test_clickhouse_source(pipe: Pipeline) -> None:
    query = "SELECT toString(number % 700) FROM system.numbers LIMIT 2000"
    done = enqueue(pipe, "--run-id", "ch-1", "--from-clickhouse", query, "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["total"], summary["duplicates"], summary["skipped_invalid"]) == (700, 1300, 0)
    assert pipe.wait_rows("ch-1", 700) == 700
    assert stored(pipe, "ch-1") == sorted(str(i) for i in range(700))
    failing = enqueue(pipe, "--run-id", "ch-2", "--from-clickhouse", "SELECT client_id FROM no_such_table")
    assert failing.returncode == 7
    assert "--from-clickhouse query failed" in failing.stderr and "no_such_table" in failing.stderr
    assert "Stack trace" not in failing.stderr
    assert "ch-2" not in read_manifests(pipe.settings)


def test_strict_refuses_the_whole_source_and_dry_run_sends_nothing(pipe: Pipeline, tmp_path: Path) -> None:
    path = tmp_path / "ids.txt"
    path.write_text("a\nb\n\nc\n")
    before = requests_end(pipe)
    strict = enqueue(pipe, "--run-id", "strict-1", "--from-file", str(path), "--strict")
    assert strict.returncode == 2
    assert (
        "--strict" in strict.stderr
        and "line 3 (empty)" in strict.stderr
        and "nothing was enqueued" in strict.stderr
    )
    strict_stdin = enqueue(
        pipe, "--run-id", "strict-2", "--from-file", "-", "--strict", stdin="a\n" + "y" * 200
    )
    assert strict_stdin.returncode == 2 and "line 2 (over 128 characters)" in strict_stdin.stderr
    dry = enqueue(pipe, "--run-id", "dry-1", "--from-file", str(path), "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    counts = json.loads(dry.stdout)
    assert counts["dry_run"] is True and (counts["total"], counts["skipped_invalid"]) == (3, 1)
    assert requests_end(pipe) == before
    manifests = read_manifests(pipe.settings)
    assert not {"strict-1", "strict-2", "dry-1"} & set(manifests)
    ok = enqueue(pipe, "--run-id", "strict-3", "--from-file", "-", "--strict", "--json", stdin="a\nb\na\nc\n")
    assert ok.returncode == 0, ok.stderr
    summary = json.loads(ok.stdout)
    assert (summary["total"], summary["duplicates"], summary["enqueued"]) == (3, 1, 3)
    assert pipe.wait_rows("strict-3", 3) == 3


def test_schedule_gives_the_same_run_and_requests_on_every_run(pipe: Pipeline) -> None:
    args = (
        "--schedule",
        "nightly",
        "--scheduled-for",
        "2026-11-23T13:00:00+01:00",
        "--clients",
        "500",
        "--json",
    )
    first = enqueue(pipe, *args)
    assert first.returncode == 0, first.stderr
    requested = read_manifests(pipe.settings)["nightly-20261123T120000Z"].requested_at_ms
    second = enqueue(pipe, *args)
    assert second.returncode == 0, second.stderr
    assert (
        json.loads(first.stdout)["run_id"]
        == json.loads(second.stdout)["run_id"]
        == "nightly-20261123T120000Z"
    )
    manifest = read_manifests(pipe.settings)["nightly-20261123T120000Z"]
    assert manifest.requested_at_ms == requested and manifest.status == "enqueued" and manifest.total == 500
    assert pipe.wait_rows("nightly-20261123T120000Z", 500) == 500
    time.sleep(1.0)  # let the second copy land too; FINAL still shows one row per client
    rows = pipe.query(
        "SELECT count(), uniqExact(client_id) FROM client_results FINAL WHERE run_id = %(r)s",
        {"r": "nightly-20261123T120000Z"},
    )
    assert rows[0] == (500, 500)


def test_error_exits(pipe: Pipeline, tmp_path: Path) -> None:
    unreadable = enqueue(pipe, "--run-id", "e-1", "--from-file", str(tmp_path / "missing.txt"))
    assert unreadable.returncode == 7 and "cannot read --from-file" in unreadable.stderr
    two_sources = enqueue(pipe, "--run-id", "e-1", "--clients", "5", "--from-file", "-")
    assert two_sources.returncode == 2 and "exactly one" in two_sources.stderr
    no_run = enqueue(pipe, "--clients", "5")
    assert no_run.returncode == 2 and "--run-id" in no_run.stderr
    bad_time = enqueue(pipe, "--schedule", "s", "--scheduled-for", "yesterday", "--clients", "5")
    assert bad_time.returncode == 2 and "ISO-8601" in bad_time.stderr
    missing_topic = enqueue(
        pipe, "--run-id", "e-1", "--clients", "5", KCOLLECT_TOPIC_PREFIX="no-such-prefix."
    )
    assert missing_topic.returncode == 4 and "no-such-prefix.requests" in missing_topic.stderr
    no_clickhouse = enqueue(
        pipe,
        "--run-id",
        "e-1",
        "--from-clickhouse",
        "SELECT 1",
        KCOLLECT_CLICKHOUSE_URL="clickhouse://127.0.0.1:1/nowhere",
    )
    assert (
        no_clickhouse.returncode == 5 and "ClickHouse at 127.0.0.1:1 did not answer" in no_clickhouse.stderr
    )
    assert "Traceback" not in no_clickhouse.stderr
    started = time.monotonic()
    unreachable = enqueue(
        pipe,
        "--run-id",
        "e-1",
        "--clients",
        "5",
        KCOLLECT_BOOTSTRAP_SERVERS="127.0.0.1:1",
        KCOLLECT_BROKER_TIMEOUT_SECONDS="2",
    )
    assert unreachable.returncode == 3 and "did not answer within 2 s" in unreachable.stderr
    assert time.monotonic() - started < 15
    help_text = enqueue(pipe, "--help", COLUMNS="200").stdout
    for code in (
        "2 bad arguments",
        "3 broker unreachable",
        "4 topic missing",
        "6 deliveries not confirmed",
        "7 the source",
    ):
        assert code in help_text


def test_past_the_memory_budget_each_client_is_sent_once_and_counts_stay_exact(
    pipe: Pipeline, tmp_path: Path
) -> None:
    """1 MB holds ~7,700 of these ids: the rest are deduplicated through the spill files on disk."""
    distinct = [f"spill-{i:07d}" for i in range(40_000)]
    repeats = random.Random(21).choices(distinct, k=15_000)  # repeats of ids held in memory and spilled
    lines = distinct[:20_000] + repeats[:7_500] + ["", "bad\x07"] + distinct[20_000:] + repeats[7_500:]
    path = tmp_path / "ids.txt"
    path.write_text("\n".join(lines) + "\n")
    small = {"KCOLLECT_ENQUEUE_MEMORY_MB": "1"}
    args = ("--run-id", "spill-1", "--from-file", str(path), "--json")
    before = requests_end(pipe)
    done = enqueue(pipe, *args, **small)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["enqueued"], summary["total"], summary["duplicates"], summary["skipped_invalid"]) == (
        40_000,
        40_000,
        15_000,
        2,
    )
    assert summary["read"] == len(lines)
    assert requests_end(pipe) - before == 40_000  # no duplicate request went on the wire
    manifest = read_manifests(pipe.settings)["spill-1"]
    assert manifest.status == "enqueued" and manifest.total == 40_000
    assert pipe.wait_rows("spill-1", 40_000) == 40_000
    assert stored(pipe, "spill-1") == distinct

    again = enqueue(pipe, *args, **small)  # a re-run: every request again, byte for byte
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["total"] == 40_000
    sent = requests_of(pipe, "spill-1")
    assert sorted(sent) == distinct
    assert all(len(values) == 2 and values[0] == values[1] for values in sent.values())

    dry = enqueue(pipe, "--from-file", str(path), "--dry-run", "--json", **small)
    assert dry.returncode == 0, dry.stderr
    counts = json.loads(dry.stdout)
    assert (counts["total"], counts["duplicates"], counts["skipped_invalid"]) == (40_000, 15_000, 2)
    stdin = "\n".join(distinct[::-1] + repeats) + "\n"
    strict = enqueue(
        pipe, "--run-id", "spill-2", "--from-file", "-", "--strict", "--json", stdin=stdin, **small
    )
    assert strict.returncode == 0, strict.stderr
    strict_summary = json.loads(strict.stdout)
    assert (strict_summary["enqueued"], strict_summary["total"], strict_summary["duplicates"]) == (
        40_000,
        40_000,
        15_000,
    )
    query = "SELECT concat('q-', toString(number % 30000)) FROM system.numbers LIMIT 50000"
    from_query = enqueue(pipe, "--run-id", "spill-3", "--from-clickhouse", query, "--json", **small)
    assert from_query.returncode == 0, from_query.stderr
    assert (json.loads(from_query.stdout)["total"], json.loads(from_query.stdout)["duplicates"]) == (
        30_000,
        20_000,
    )
    assert pipe.wait_rows("spill-2", 40_000) == 40_000
    assert pipe.wait_rows("spill-3", 30_000) == 30_000
