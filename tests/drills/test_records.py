"""Drills on what arrives on the requests topic: garbage and oversized (10 MB) records in the middle of a
run, the same run enqueued twice, and record timestamps far in the past and the future."""

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


def produce(d: Deployment, records: Sequence[tuple[str, bytes, int | None]]) -> list[tuple[int, int]]:
    """Produce (key, value, timestamp ms or None) to the requests topic; the (partition, offset) of each."""
    settings = d.settings
    producer = make_producer(settings, **{"message.max.bytes": 3 * TEN_MB})
    where: list[tuple[int, int]] = [(-1, -1)] * len(records)

    def delivered(index: int):  # type: ignore[no-untyped-def]
        def report(err, msg):  # type: ignore[no-untyped-def]
            assert err is None, err
            where[index] = (msg.partition(), msg.offset())

        return report

    topic = f"{settings.topic_prefix}requests"
    for index, (key, value, timestamp) in enumerate(records):
        # timestamp 0: the producer's clock
        producer.produce(topic, value, key.encode(), on_delivery=delivered(index), timestamp=timestamp or 0)
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


def garbage_drill(tmp_path: Path, shared_clickhouse: ClickHouse, name: str, oversized: bool) -> None:
    with drill_stack(tmp_path, shared_clickhouse) as stack:
        d = stack.deploy(f"{name}{int(time.time()) % 100000}")
        start_pipeline(d)
        watch = watched(d)
        run_id = f"{d.name}-run"
        enqueue(d, run_id, CLIENTS // 2)
        bad = bad_records(run_id) + ([oversized_record(run_id)] if oversized else [])
        offsets = produce(d, bad)
        enqueue(d, run_id, CLIENTS)  # the rest of the run (the first half again: same requests)
        check_run(d, run_id, CLIENTS, watch)
        topic = f"{d.settings.topic_prefix}requests"
        letters = [x for x in dead_letters(d.settings, None) if x.original[0] == topic]
        for (key, value, _), (partition, offset) in zip(bad, offsets, strict=True):
            mine = [x for x in letters if x.original[1:] == (partition, offset)]
            assert len(mine) == 1, f"{key}: dead-lettered {len(mine)} times"
            headers = mine[0].headers
            assert mine[0].client_id == key
            for header in ("error_class", "error_message", "stage", "original_offset", "first_failure_ms"):
                assert headers.get(header), f"{key}: header {header} missing: {headers}"
            if value.startswith(b"{") and b'"run_id"' in value:
                assert headers.get("run_id") == run_id, f"{key}: {headers}"
            if len(value) > 1024 * 1024:
                assert headers.get("original_truncated") == str(len(value)), headers
                assert headers.get("original_sha256"), headers


@pytest.mark.drill
def test_garbage_records_are_dead_lettered_once(tmp_path: Path, shared_clickhouse: ClickHouse) -> None:
    garbage_drill(tmp_path, shared_clickhouse, "rg", oversized=False)


@pytest.mark.drill
def test_oversized_record_is_dead_lettered_once(tmp_path: Path, shared_clickhouse: ClickHouse) -> None:
    garbage_drill(tmp_path, shared_clickhouse, "ro", oversized=True)


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
        report = check_run(d, run_id, CLIENTS, watch)
        assert report.manifest_total == CLIENTS
        assert report.stored == CLIENTS and report.duplicated_final == 0


@pytest.mark.drill
def test_record_timestamps_far_in_the_past_and_future(tmp_path: Path, shared_clickhouse: ClickHouse) -> None:
    # Apache Kafka 4 refuses records stamped more than an hour ahead (INVALID_RECORD) unless the broker
    # allows them; kcollect's producers stamp "now", so only a foreign producer can send such records.
    accept_any_time = {"log.message.timestamp.after.max.ms": str(2**63 - 1)}
    with drill_stack(tmp_path, shared_clickhouse, broker_properties=accept_any_time) as stack:
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
        check_run(d, run_id, CLIENTS, watch)
