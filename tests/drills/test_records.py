"""Drills on what arrives on the topics: garbage on the requests and on the results topic, alone (produced
before the run, on partitions 0 and 3: windows and batches of garbage only) and mixed with the run's own
records; an oversized (10 MB) request; the same run enqueued twice; record timestamps far in the past
and the future. Every garbage record is dead-lettered exactly once, none of the run's clients is
(``dead_letters=0``), and the garbage that names the run is counted apart by the checker."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import orjson
import pytest

from bench.deployment import Deployment
from schemas.codec import request_encoder
from schemas.models import RunManifest
from streams.kafka.clients import make_producer
from streams.kafka.producer import BatchProducer
from streams.runs.checker import dead_letters
from streams.runs.manifests import publish_manifest
from tests.drills.kit import ClickHouse, check_run, drill_stack, enqueue, start_pipeline, watched

CLIENTS = 20_000
TEN_MB = 10 * 1024 * 1024


def produce(
    d: Deployment,
    records: Sequence[tuple[str, bytes, int | None]],
    topic: str = "requests",
    partitions: Sequence[int] | None = None,
) -> list[tuple[int, int]]:
    """Produce (key, value, timestamp ms or None) to ``topic`` (round robin over ``partitions`` when given,
    else by key); the (partition, offset) of each."""
    settings = d.settings
    producer = make_producer(settings, **{"message.max.bytes": 3 * TEN_MB})
    where: list[tuple[int, int]] = [(-1, -1)] * len(records)

    def delivered(index: int):  # type: ignore[no-untyped-def]
        def report(err, msg):  # type: ignore[no-untyped-def]
            assert err is None, err
            where[index] = (msg.partition(), msg.offset())

        return report

    name = f"{settings.topic_prefix}{topic}"
    for index, (key, value, timestamp) in enumerate(records):
        report = delivered(index)
        # timestamp 0: the producer's clock
        if partitions is None:
            producer.produce(name, value, key.encode(), on_delivery=report, timestamp=timestamp or 0)
        else:
            partition = partitions[index % len(partitions)]
            producer.produce(
                name, value, key.encode(), partition, on_delivery=report, timestamp=timestamp or 0
            )
        producer.poll(0)
    assert producer.flush(60) == 0
    return where


def bad_records(run_id: str) -> list[tuple[str, bytes, int | None]]:
    good = {"v": 1, "run_id": run_id, "requested_at_ms": 1, "attempt": 0, "deadline_ms": None}
    return [
        ("bad-binary", b"\x00\xff\xfe garbage \x81", None),
        ("bad-text", b"not json at all", None),
        ("bad-array", b"[1, 2, 3]", None),
        ("bad-empty-id", orjson.dumps(good | {"client_id": ""}), None),
        ("bad-version", orjson.dumps(good | {"v": 2, "client_id": "bad-version"}), None),
    ]


def oversized_record(run_id: str) -> tuple[str, bytes, int | None]:
    good = {"v": 1, "run_id": run_id, "requested_at_ms": 1, "attempt": 0, "deadline_ms": None}
    return ("bad-10mb", orjson.dumps(good | {"client_id": "bad-10mb", "pad": "x" * TEN_MB}), None)


def bad_results(run_id: str) -> list[tuple[str, bytes, int | None]]:
    now = int(time.time() * 1000)
    good = {
        "v": 1, "run_id": run_id, "requested_at_ms": now, "attempt": 0, "collected_at_ms": now,
        "status": "ok", "metrics": {}, "missing": [], "computed": {},
    }  # fmt: skip
    return [
        ("bad-binary", b"\x00\xff\xfe garbage \x81", None),
        ("bad-text", b"not json", None),
        ("bad-array", b"[1, 2, 3]", None),
        ("bad-empty-id", orjson.dumps(good | {"client_id": ""}), None),
        ("bad-version", orjson.dumps(good | {"v": 2, "client_id": "bad-version"}), None),
    ]


def wait_dead_lettered(d: Deployment, topic: str, count: int, timeout: float = 60) -> None:
    """Until ``count`` dead letters of records of ``topic`` are on the dead-letter topics."""
    name = f"{d.settings.topic_prefix}{topic}"
    deadline = time.monotonic() + timeout
    found = 0
    while time.monotonic() < deadline:
        found = sum(1 for x in dead_letters(d.settings, None) if x.original[0] == name)
        if found >= count:
            return
        time.sleep(0.5)
    raise AssertionError(f"{found} of {count} garbage record(s) of {topic} dead-lettered after {timeout} s")


def garbage_drill(
    tmp_path: Path, shared_clickhouse: ClickHouse, name: str, topic: str, alone: bool, oversized: bool = False
) -> None:
    """Garbage on ``topic`` (requests or results): ``alone`` before the run on partitions 0 and 3 (each
    partition's first window or batch holds nothing else), or in the middle of the run."""
    with drill_stack(tmp_path, shared_clickhouse) as stack:
        d = stack.deploy(f"{name}{int(time.time()) % 100000}")
        run_id = f"{d.name}-run"
        bad = bad_records(run_id) if topic == "requests" else bad_results(run_id)
        bad += [oversized_record(run_id)] if oversized else []
        partitions = (0, 3) if alone else None
        offsets = produce(d, bad, topic, partitions) if alone else []
        start_pipeline(d)
        watch = watched(d)
        if alone:
            wait_dead_lettered(d, topic, len(bad))
            enqueue(d, run_id, CLIENTS)
        else:
            enqueue(d, run_id, CLIENTS // 2)
            offsets = produce(d, bad, topic)
            enqueue(d, run_id, CLIENTS)  # the rest of the run (the first half again: same requests)
        report = check_run(d, run_id, CLIENTS, watch, dead_letters=0)
        naming_the_run = [key for key, value, _ in bad if value.startswith(b"{") and b'"run_id"' in value]
        assert report.dead_letters_of_others == len(naming_the_run), report.as_dict()
        name_of_topic = f"{d.settings.topic_prefix}{topic}"
        letters = [x for x in dead_letters(d.settings, None) if x.original[0] == name_of_topic]
        assert len(letters) == len(bad), [x.original for x in letters]
        for (key, value, _), (partition, offset) in zip(bad, offsets, strict=True):
            mine = [x for x in letters if x.original[1:] == (partition, offset)]
            assert len(mine) == 1, f"{key}: dead-lettered {len(mine)} times"
            headers = mine[0].headers
            assert mine[0].client_id == key
            for header in ("error_class", "error_message", "stage", "original_offset"):
                assert headers.get(header), f"{key}: header {header} missing: {headers}"
            if topic == "requests":
                assert headers.get("first_failure_ms"), f"{key}: {headers}"
            if key in naming_the_run:
                assert headers.get("run_id") == run_id, f"{key}: {headers}"
            if len(value) > 1024 * 1024:
                assert headers.get("original_truncated") == str(len(value)), headers
                assert headers.get("original_sha256"), headers


@pytest.mark.drill
@pytest.mark.parametrize(
    ("topic", "alone"), [("requests", True), ("requests", False), ("results", True), ("results", False)]
)
def test_garbage_records_are_dead_lettered_once(
    tmp_path: Path, shared_clickhouse: ClickHouse, topic: str, alone: bool
) -> None:
    garbage_drill(tmp_path, shared_clickhouse, f"g{topic[1]}{'a' if alone else 'm'}", topic, alone)


@pytest.mark.drill
def test_oversized_record_is_dead_lettered_once(tmp_path: Path, shared_clickhouse: ClickHouse) -> None:
    garbage_drill(tmp_path, shared_clickhouse, "ro", "requests", alone=False, oversized=True)


@pytest.mark.drill
def test_same_run_enqueued_twice(tmp_path: Path, shared_clickhouse: ClickHouse) -> None:
    with drill_stack(tmp_path, shared_clickhouse) as stack:
        d = stack.deploy(f"rt{int(time.time()) % 100000}")
        start_pipeline(d)
        watch = watched(d)
        run_id = f"{d.name}-run"
        first = enqueue(d, run_id, CLIENTS)
        second = enqueue(d, run_id, CLIENTS)
        assert first.enqueued == second.enqueued == CLIENTS
        report = check_run(d, run_id, CLIENTS, watch, dead_letters=0)
        assert report.manifest_total == CLIENTS
        assert report.stored == CLIENTS and report.duplicated_final == 0


@pytest.mark.drill
def test_record_timestamps_far_in_the_past_and_future(tmp_path: Path, shared_clickhouse: ClickHouse) -> None:
    with drill_stack(tmp_path, shared_clickhouse) as stack:
        d = stack.deploy(f"rs{int(time.time()) % 100000}")
        start_pipeline(d)
        watch = watched(d)
        run_id = f"{d.name}-run"
        now = int(time.time() * 1000)
        encode = request_encoder(run_id, now)
        past, future = 1, 4102444800000  # 1970-01-01T00:00:00.001Z and 2100-01-01
        records = [(str(i), encode(str(i)), past if i % 2 else future) for i in range(CLIENTS)]
        produce(d, records)
        manifest = RunManifest(
            run_id=run_id,
            source="drill",
            status="enqueued",
            total=CLIENTS,
            requested_at_ms=now,
            created_at_ms=now,
            finished_at_ms=now,
        )
        producer = BatchProducer(d.settings)
        publish_manifest(d.settings, producer, manifest)
        check_run(d, run_id, CLIENTS, watch, dead_letters=0)
