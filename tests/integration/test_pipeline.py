"""A whole collection run through real processes on the real broker and ClickHouse."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, Producer

from processors.processor.compute import summary
from processors.processor.subsystems.simulated import DEFAULT_METRICS, simulated_value
from schemas.codec import encode_record, request_record
from streams.kafka.dead_letter import header_map
from tests.integration.pipeline import Pipeline, make_pipeline

pytestmark = pytest.mark.integration

ALL_METRICS = [m for metrics in DEFAULT_METRICS.values() for m in metrics]


@pytest.fixture
def pipeline(
    kafka_bootstrap: str, clickhouse_url: str, unique_name: str, tmp_path: Path
) -> Iterator[Pipeline]:
    pipe = make_pipeline(kafka_bootstrap, clickhouse_url, unique_name, tmp_path)
    yield pipe
    pipe.kill_all()


def check_rows(pipe: Pipeline, run_id: str, clients: list[str]) -> None:
    rows = pipe.query(
        "SELECT client_id, status, metrics, computed, missing FROM client_results FINAL WHERE run_id = %(r)s",
        {"r": run_id},
    )
    assert sorted(r[0] for r in rows) == sorted(clients)
    for client_id, status, metrics_json, computed_json, missing in rows:
        expected = {m: simulated_value(run_id, client_id, m) for m in ALL_METRICS}
        assert status == "ok" and missing == []
        assert orjson.loads(metrics_json) == expected
        assert orjson.loads(computed_json) == summary(expected)


def test_enqueue_processor_sink_as_processes(pipeline: Pipeline) -> None:
    pipeline.start("processor")
    pipeline.start("sink")
    pipeline.wait_ready("processor", "sink")
    done = pipeline.cli("enqueue", "--run-id", "e2e-1", "--clients", "0-9999", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["enqueued"] == 10000
    assert pipeline.wait_rows("e2e-1", 10000) == 10000
    check_rows(pipeline, "e2e-1", [str(i) for i in range(10000)])
    raw = pipeline.query("SELECT count(), uniqExact(client_id) FROM client_results WHERE run_id = 'e2e-1'")
    assert raw[0][1] == 10000
    assert pipeline.stop("processor") == 0
    assert pipeline.stop("sink") == 0


def test_malformed_requests_are_dead_lettered_and_the_rest_processed(pipeline: Pipeline) -> None:
    settings = pipeline.settings
    topic = f"{settings.topic_prefix}requests"
    bad_values = [b"not json", b"\xff\xfe\xfa", b"", b'{"v":1,"run_id":"bad-1"}', b'{"v":9,"run_id":"x"}']
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap()})
    good = [str(i) for i in range(200)]
    for i, client in enumerate(good):
        producer.produce(
            topic, encode_record(request_record("bad-1", client, 1_700_000_000_000)), client, partition=0
        )
        if i % 40 == 0:
            producer.produce(topic, bad_values[(i // 40) % len(bad_values)], b"poison", partition=0)
    assert producer.flush(30) == 0
    pipeline.start("processor")
    pipeline.start("sink")
    assert pipeline.wait_rows("bad-1", 200) == 200
    check_rows(pipeline, "bad-1", good)
    dead = consume_all(settings.kafka_bootstrap(), f"{settings.topic_prefix}requests.dlq", 5)
    assert sorted(m.value() for m in dead) == sorted(bad_values)
    for msg in dead:
        headers = header_map(msg.headers())
        assert headers["stage"] == "decode"
        assert headers["original_topic"] == topic and headers["original_partition"] == "0"
        assert headers["error_class"] == "CodecError" and headers["error_message"]
    log = pipeline.log("processor")
    assert log.count(f"invalid request at {topic}/0@") == 5


def consume_all(bootstrap: str, topic: str, expected: int, timeout: float = 30) -> list:  # type: ignore[type-arg]
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"check-{time.time_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "fetch.queue.backoff.ms": 20,
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([topic])
    got = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < expected and time.monotonic() < deadline:
            got.extend(m for m in consumer.consume(100, 0.5) if m.error() is None)
        time.sleep(0.5)
        got.extend(m for m in consumer.consume(100, 0.5) if m.error() is None)
    finally:
        consumer.close()
    return got


def test_sigterm_stops_services_quickly_and_restart_finishes_the_run(
    kafka_bootstrap: str, clickhouse_url: str, unique_name: str, tmp_path: Path
) -> None:
    pipe = make_pipeline(
        kafka_bootstrap,
        clickhouse_url,
        unique_name,
        tmp_path,
        KCOLLECT_SIM_LATENCY_MS="20",
        KCOLLECT_CONSUME_BATCH="500",
    )
    try:
        pipe.start("processor")
        pipe.start("sink")
        pipe.wait_ready("processor", "sink")
        assert pipe.cli("enqueue", "--run-id", "term-1", "--clients", "20000").returncode == 0
        while pipe.wait_rows("term-1", 1, timeout=60) < 1:
            pass
        for name in ("processor", "sink"):
            started = time.monotonic()
            assert pipe.stop(name, timeout=15) == 0
            assert time.monotonic() - started < 10
        partial = pipe.wait_rows("term-1", 20000, timeout=0.5)
        assert 0 < partial < 20000, "the stop should land in the middle of the run"
        pipe.start("processor")
        pipe.start("sink")
        assert pipe.wait_rows("term-1", 20000, timeout=180) == 20000
        check_rows(pipe, "term-1", [str(i) for i in range(20000)])
    finally:
        pipe.kill_all()
