"""The run checker on the real broker and ClickHouse: each kind of failure it must name is planted in a
run of otherwise good rows, and the checker must fail the run for exactly those clients."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer

from processors.processor.compute import summary
from schemas.codec import request_encoder
from schemas.ddl import RESULTS_TABLE, result_version
from schemas.models import RunManifest
from streams.clickhouse.client import connect
from streams.kafka.producer import BatchProducer
from streams.runs.checker import verify_run
from streams.runs.manifests import publish_manifest
from tests.integration.pipeline import Pipeline, make_pipeline

pytestmark = pytest.mark.integration

T0 = 1_763_900_000_000  # 2025-11-23 (November)
DECEMBER = 1_765_000_000_000  # 2025-12-06: another partition of client_results
METRICS = {"cpu": 1.0, "mem": 2.0}
NAMES = "run_id, client_id, requested_at, collected_at, attempt, status, metrics, missing, computed, version"


@pytest.fixture
def pipe(kafka_bootstrap: str, clickhouse_url: str, unique_name: str, tmp_path: Path) -> Iterator[Pipeline]:
    pipeline = make_pipeline(kafka_bootstrap, clickhouse_url, unique_name, tmp_path)
    yield pipeline
    pipeline.kill_all()


def enqueued(pipe: Pipeline, run_id: str, clients: list[str]) -> None:
    """The run's requests on the requests topic and its manifest, as an enqueue leaves them."""
    settings = pipe.settings
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap()})
    encode = request_encoder(run_id, T0)
    for client in clients:
        producer.produce(f"{settings.topic_prefix}requests", encode(client), client.encode())
    assert producer.flush(30) == 0
    manifest = RunManifest(
        run_id=run_id,
        source="test",
        status="enqueued",
        total=len(clients),
        requested_at_ms=T0,
        created_at_ms=T0,
    )
    publish_manifest(settings, BatchProducer(settings), manifest)


def row(run_id: str, client: str, requested_at_ms: int = T0, **changes: Any) -> tuple[Any, ...]:
    values: dict[str, Any] = {
        "status": "ok",
        "metrics": METRICS,
        "missing": [],
        "computed": summary(METRICS),
    } | changes
    return (
        run_id,
        client,
        requested_at_ms // 1000,
        T0 // 1000 + 1,
        0,
        values["status"],
        orjson.dumps(values["metrics"]),
        values["missing"],
        orjson.dumps(values["computed"]),
        result_version(0, values["status"] == "ok", T0 + 1000),
    )


def insert(pipe: Pipeline, rows: list[tuple[Any, ...]]) -> None:
    client = connect(pipe.settings.clickhouse())
    try:
        client.execute(f"INSERT INTO {RESULTS_TABLE} ({NAMES}) VALUES", rows)
    finally:
        client.disconnect()


def dead_letter(pipe: Pipeline, run_id: str, client: str) -> None:
    settings = pipe.settings
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap()})
    headers = [("run_id", run_id.encode()), ("stage", b"sink-insert"), ("error_class", b"Planted")]
    producer.produce(f"{settings.topic_prefix}results.dlq", b"{}", client.encode(), headers=headers)
    assert producer.flush(30) == 0


def test_a_duplicate_in_two_partitions_fails_the_run(pipe: Pipeline) -> None:
    """Rows of one (run, client) in two months: no merge ever removes either, and FINAL on 18.16 merges
    across partitions at query time, so a count under FINAL alone does not see it."""
    run = "dup-months-1"
    clients = [f"c{i}" for i in range(10)]
    enqueued(pipe, run, clients)
    insert(pipe, [row(run, c) for c in clients] + [row(run, "c3", requested_at_ms=DECEMBER)])
    report = verify_run(pipe.settings, run)
    assert report.duplicated_final == 1 and report.samples["duplicated_final"] == ["c3"], report.as_dict()
    assert not report.ok


def test_every_planted_contradiction_is_named(pipe: Pipeline) -> None:
    run = "planted-1"
    clients = [f"c{i}" for i in range(20)]
    enqueued(pipe, run, clients)
    planted = {
        "c1": {"metrics": {"cpu": 1.0}, "computed": summary({"cpu": 1.0})},  # ok without mem
        "c2": {"missing": ["mem"]},  # ok with a missing metric listed
        "c3": {"status": "partial", "metrics": {"cpu": 1.0}, "computed": summary({"cpu": 1.0})},  # no missing
        "c4": {"computed": {"count": 2.0, "total": 99.0, "mean": 1.5, "max": 2.0, "min": 1.0}},
        "c5": {"status": "partial", "missing": ["mem"], "computed": summary(METRICS)},  # mem both ways
    }
    good = [row(run, c) for c in clients if c not in planted]
    insert(pipe, good + [row(run, c, **changes) for c, changes in planted.items()])
    dead_letter(pipe, run, "c7")  # stored and dead-lettered
    report = verify_run(pipe.settings, run, compute=summary, metric_names=["cpu", "mem"])
    samples = report.samples
    assert samples["stored_and_dead_lettered"] == ["c7"], report.as_dict()
    assert samples["incomplete_ok"] == ["c1"], report.as_dict()
    assert samples["status_contradicts_missing"] == ["c2", "c3", "c5"], report.as_dict()
    assert samples["wrong_computed"] == ["c4"], report.as_dict()
    assert (report.lost, report.duplicated_final, report.unexpected) == (0, 0, 0)
    assert not report.ok and len(report.problems) == 4, report.problems
    # without the configured names, the run's own names (cpu, mem) are what an ok row must hold
    assert verify_run(pipe.settings, run).samples["incomplete_ok"] == ["c1"]
    # the command: the deployment's compute function (summary, the default config's) checks computed
    done = pipe.cli("runs", "verify", run, "--json", "--values", "none")
    assert done.returncode == 1, done.stdout + done.stderr
    cli = json.loads(done.stdout)
    assert cli["computed_checked"] and cli["samples"]["wrong_computed"] == ["c4"], cli
    assert cli["samples"]["stored_and_dead_lettered"] == ["c7"], cli


def test_a_clean_run_passes(pipe: Pipeline) -> None:
    run = "clean-1"
    clients = [f"c{i}" for i in range(20)]
    enqueued(pipe, run, clients)
    partial = {
        "status": "partial",
        "metrics": {"cpu": 1.0},
        "missing": ["mem"],
        "computed": summary({"cpu": 1.0}),
    }
    insert(pipe, [row(run, c) for c in clients[:-1]] + [row(run, clients[-1], **partial)])
    report = verify_run(pipe.settings, run, compute=summary, metric_names=["cpu", "mem"])
    assert report.ok, report.as_dict()
    assert report.computed_checked and report.stored == 20
