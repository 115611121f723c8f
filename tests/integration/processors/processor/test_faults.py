"""The processor against `kcollect simulate` on the real broker: faults, outages, retries, poison."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer

from processors.processor.compute import summary
from processors.processor.subsystems.simulated import DEFAULT_METRICS, simulated_value
from streams.kafka.dead_letter import header_map
from tests.integration.pipeline import Pipeline, make_pipeline
from tests.integration.processors.processor.test_kit import (
    client_results,
    control,
    enqueue,
    free_port,
    http_config,
    metric_value,
    read_results,
    read_topic,
    scrape,
    sim_stats,
    start_simulator,
)

pytestmark = pytest.mark.integration
BETA = list(DEFAULT_METRICS["beta"])
ALL = ["uptime", *BETA]


@pytest.fixture
def pipe(kafka_bootstrap: str, clickhouse_url: str, unique_name: str, tmp_path: Path) -> Iterator[Pipeline]:
    pipeline = make_pipeline(kafka_bootstrap, clickhouse_url, unique_name, tmp_path)
    yield pipeline
    pipeline.kill_all()


def results_by_client(results: list[dict]) -> dict[str, dict]:  # type: ignore[type-arg]
    return {f"{result['run_id']}/{result['client_id']}": result for result in results}


def check_values(run_id: str, result: dict) -> None:  # type: ignore[type-arg]
    for metric, value in result["metrics"].items():
        assert value == simulated_value(run_id, result["client_id"], metric)
    assert sorted([*result["metrics"], *result["missing"]]) == sorted(ALL)
    assert result["computed"] == summary(result["metrics"])


def test_http_faults_and_poison_records(pipe: Pipeline) -> None:
    base = start_simulator(
        pipe,
        {
            "latency_ms": 2,
            "jitter_ms": 5,
            "error_rate": 0.08,
            "rate_limit_rate": 0.05,
            "retry_after_s": 0.2,
            "garbage_rate": 0.2,  # 4 kinds of garbage, ~5% each: every kind shows up in ~150 calls
            "hang_rate": 0.05,  # ~150 calls: each fault kind shows up (P(no hang) < 0.1%)
            "hang_seconds": 3,
        },
    )
    config = http_config(  # a breaker that never opens here: this test is about retries
        pipe,
        base,
        timeout_seconds=0.5,
        retries=4,
        backoff_base_seconds=0.02,
        batch_size=40,
        breaker={"failure_threshold": 1000},
    )
    pipe.env |= {"KCOLLECT_PROCESSOR_CONFIG": str(config), "KCOLLECT_CONSUME_BATCH": "1000"}
    settings = pipe.settings
    topic = f"{settings.topic_prefix}requests"
    poison = [b"not json", b"\xff\xfe\xfa", b"", b'{"v":1,"run_id":"f-1"}', b'{"v":9,"run_id":"f-1"}']
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap()})
    for value in poison:  # the poison goes first on partition 0: the good records behind it must flow
        producer.produce(topic, value, b"poison", partition=0)
    assert producer.flush(30) == 0
    enqueue(pipe, "f-1", range(3000))
    pipe.start("processor")
    results = results_by_client(read_results(pipe, 3000, timeout=90))
    assert len(results) == 3000
    for result in results.values():
        check_values("f-1", result)
    partial = [r for r in results.values() if r["status"] == "partial"]
    assert len(partial) < 300, "retries should save nearly every call"
    dead = read_topic(pipe, "requests.dlq", lambda got: len(got) >= 5, timeout=20)
    assert sorted(m.value() for m in dead) == sorted(poison)
    for msg in dead:
        headers = header_map(msg.headers())
        assert headers["stage"] == "decode" and headers["error_class"] == "CodecError"
        assert headers["original_topic"] == topic and headers["original_partition"] == "0"
        assert headers["reason"] in ("empty", "invalid_utf8", "not_json", "unknown_version", "wrong_schema")
    done = pipe.cli("dlq", "inspect", "--json", "--idle-seconds", "1")
    assert done.returncode == 0, done.stderr
    report = orjson.loads(done.stdout)
    assert report["total"] == 5 and report["by_stage"] == {"decode": 5}
    assert report["by_error_class"] == {"CodecError": 5} and report["samples"]
    stats = sim_stats(base)
    for kind in ("error", "rate_limited", "hang", "garbage_"):
        assert any(f":{kind}" in k for k in stats), (kind, stats)
    assert len({k.split(":")[1] for k in stats if ":garbage_" in k}) >= 3, stats
    assert pipe.stop("processor") == 0


def test_outage_opens_breaker_partial_results_then_retries_and_deadlines(pipe: Pipeline) -> None:
    base = start_simulator(pipe, {"latency_ms": 1})
    metrics_port = free_port()
    config = http_config(
        pipe,
        base,
        timeout_seconds=1.0,
        retries=1,
        backoff_base_seconds=0.01,
        breaker={"failure_threshold": 3, "reset_seconds": 0.5},
        retry={"max_attempts": 8, "delay_ms": 400, "max_delay_ms": 1000},
    )
    pipe.env |= {
        "KCOLLECT_PROCESSOR_CONFIG": str(config),
        "KCOLLECT_HTTP_PORT": str(metrics_port),
        "KCOLLECT_CONSUME_BATCH": "500",
    }
    pipe.start("processor")
    pipe.wait_ready("processor")
    # 1. beta is down: its breaker opens and clients get partial results naming beta's metrics.
    control(base, {"subsystem": "beta", "outage_seconds": 4})
    enqueue(pipe, "o-1", range(2000))
    partial = results_by_client(read_results(pipe, 2000))
    assert len(partial) == 2000
    assert all(r["status"] == "partial" and r["missing"] == BETA for r in partial.values())
    text = scrape(metrics_port)
    assert metric_value(text, "kcollect_processor_breaker_state", subsystem="beta") in (1.0, 2.0)
    assert (
        metric_value(text, "kcollect_processor_fetch_calls_total", subsystem="beta", outcome="breaker_open")
        > 0
    )
    # 2. the outage ends: a half-open probe succeeds and the breaker closes.
    time.sleep(4.5)
    enqueue(pipe, "o-2", range(500))
    ok = results_by_client(read_results(pipe, 2500))
    assert all(ok[f"o-2/{i}"]["status"] == "ok" for i in range(500))
    assert metric_value(scrape(metrics_port), "kcollect_processor_breaker_state", subsystem="beta") == 0.0
    # 3. every subsystem down: requests go to the retry topic and succeed once the outage is over;
    #    a request past its deadline is dead-lettered as expired, never fetched.
    control(base, {"outage_seconds": 2})
    enqueue(pipe, "o-3", range(300))
    enqueue(pipe, "o-4", range(20), deadline_ms=int(time.time() * 1000) - 1000)
    later = read_results(pipe, 2800, timeout=60)
    retried = {r["client_id"]: r for r in later if r["run_id"] == "o-3"}
    assert len(retried) == 300  # partial when the outage ended between the two subsystems' calls
    assert sum(r["status"] == "ok" for r in retried.values()) > 250
    for result in retried.values():
        check_values("o-3", result)
    assert all(r["attempt"] >= 1 for r in retried.values())
    assert not any(r["run_id"] == "o-4" for r in later)
    waiting = read_topic(pipe, "requests.retry", lambda got: len(got) >= 300)
    first = header_map(waiting[0].headers())
    assert int(first["not_before_ms"]) > int(first["first_failure_ms"]) and first["attempts"] == "1"
    dead = [header_map(m.headers()) for m in read_topic(pipe, "requests.dlq", lambda got: len(got) >= 20)]
    assert len(dead) == 20 and all(h["reason"] == "expired" and h["stage"] == "deadline" for h in dead)
    # 4. `kcollect dlq replay` re-enqueues the expired requests without their deadline: now they pass.
    done = pipe.cli("dlq", "replay", "--reason", "expired", "--json")
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout) == {"matched": 20, "replayed": 20, "skipped_truncated": 0, "failed": 0}
    o4 = lambda got: sum(r["run_id"] == "o-4" for r in client_results(got))  # noqa: E731
    assert o4(read_topic(pipe, "results", lambda got: o4(got) >= 20)) == 20
    assert pipe.stop("processor") == 0
