"""Run completion by sets on the real broker and ClickHouse: a run is complete when every client of every
confirmed enqueue is stored or dead-lettered, not when the counts happen to add up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer

from producers.enqueue.enqueue import enqueue_run
from producers.enqueue.sources import RangeSource
from schemas.ddl import RESULTS_TABLE, result_version
from streams.clickhouse.client import connect
from streams.runs.manifests import read_manifest
from streams.runs.status import run_status
from tests.integration.pipeline import Pipeline, make_pipeline

pytestmark = pytest.mark.integration

NAMES = "run_id, client_id, requested_at, collected_at, attempt, status, metrics, missing, computed, version"


@pytest.fixture
def pipe(kafka_bootstrap: str, clickhouse_url: str, unique_name: str, tmp_path: Path) -> Iterator[Pipeline]:
    pipeline = make_pipeline(kafka_bootstrap, clickhouse_url, unique_name, tmp_path)
    yield pipeline
    pipeline.kill_all()


def store(pipe: Pipeline, run_id: str, clients: list[str]) -> None:
    """Rows as the sink writes them (no processor or sink runs in these tests: the outcome is planted)."""
    rows: list[tuple[Any, ...]] = [
        (run_id, c, 1_763_900_000, 1_763_900_001, 0, "ok", b"{}", [], b"{}", result_version(0, True, 0))
        for c in clients
    ]
    client = connect(pipe.settings.clickhouse())
    try:
        client.execute(f"INSERT INTO {RESULTS_TABLE} ({NAMES}) VALUES", rows)
    finally:
        client.disconnect()


def dead_letter(pipe: Pipeline, topic: str, run_id: str, client: str, stage: str, reason: str = "") -> None:
    settings = pipe.settings
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap()})
    headers = [("run_id", run_id.encode()), ("stage", stage.encode()), ("reason", reason.encode())]
    producer.produce(f"{settings.topic_prefix}{topic}", b"{}", client.encode(), headers=headers)
    assert producer.flush(30) == 0


def test_a_second_enqueue_with_other_clients_keeps_the_run_pending(pipe: Pipeline) -> None:
    settings = pipe.settings
    run = "sets-1"
    enqueue_run(settings, run, RangeSource(0, 9))
    store(pipe, run, [str(i) for i in range(10)])
    assert run_status(settings, run).complete
    second = enqueue_run(settings, run, RangeSource(5, 14))  # five old clients, five new ones
    assert second.total == 10
    manifest = read_manifest(settings, run)
    assert manifest is not None and manifest.total == 15, manifest
    progress = run_status(settings, run)
    assert progress.total == 15 and not progress.complete and progress.pending == 5, progress.as_dict()
    store(pipe, run, [str(i) for i in range(10, 14)])
    dead_letter(pipe, "requests.dlq", run, "14", "deadline", "expired")
    done = run_status(settings, run)
    assert done.complete and done.pending == 0 and done.expired == 1, done.as_dict()


def test_dead_letters_of_garbage_do_not_stand_in_for_pending_clients(pipe: Pipeline) -> None:
    """Two invalid records carry the run's id (so their dead letters name it) but are not clients of
    the run: they must not make up for two clients still pending."""
    settings = pipe.settings
    run = "sets-2"
    enqueue_run(settings, run, RangeSource(0, 9))
    store(pipe, run, [str(i) for i in range(8)])
    dead_letter(pipe, "requests.dlq", run, "bad-version", "decode", "unsupported_version")
    dead_letter(pipe, "results.dlq", run, "junk", "sink-decode")
    progress = run_status(settings, run)
    assert not progress.complete and progress.pending == 2, progress.as_dict()
    store(pipe, run, ["8"])
    dead_letter(pipe, "results.dlq", run, "9", "sink-decode")  # a client's result that did not decode
    done = run_status(settings, run)
    assert done.complete and done.pending == 0 and done.dead_lettered == 1, done.as_dict()


def test_runs_status_reads_manifests_written_before_client_sets(pipe: Pipeline) -> None:
    """A manifest of the previous format (a total, no client sets) still gives a count-based status."""
    settings = pipe.settings
    run = "sets-old-1"
    value = orjson.dumps(
        {"v": 1, "run_id": run, "source": "old", "status": "enqueued", "total": 3,
         "requested_at_ms": 1, "created_at_ms": 1, "finished_at_ms": 2, "deadline_ms": None}
    )  # fmt: skip
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap()})
    producer.produce(f"{settings.topic_prefix}runs", value, run.encode())
    assert producer.flush(30) == 0
    store(pipe, run, ["a", "b"])
    assert run_status(settings, run).pending == 1
    store(pipe, run, ["c"])
    assert run_status(settings, run).complete
