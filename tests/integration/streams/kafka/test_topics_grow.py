"""`kcollect topics grow` on Apache Kafka, between runs and during one, with the services running: every
client is stored exactly once, and batches from the new request partitions go to the new results
partitions (request partition p -> results partition p mod N). On Tansu the broker refuses: one line,
exit 8."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.pipeline import Pipeline, make_pipeline
from tests.integration.processors.processor.test_kit import enqueue, read_topic

pytestmark = pytest.mark.integration
FAST_METADATA = '{"topic.metadata.refresh.interval.ms": "1000"}'


@pytest.fixture
def pipe(apache_kafka: str, clickhouse_url: str, unique_name: str, tmp_path: Path) -> Iterator[Pipeline]:
    pipeline = make_pipeline(apache_kafka, clickhouse_url, unique_name, tmp_path)
    yield pipeline
    pipeline.kill_all()


def _grow(pipe: Pipeline, partitions: int) -> list[str]:
    done = pipe.cli("topics", "grow", "--partitions", str(partitions))
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_grow_between_runs_and_during_one_loses_nothing(pipe: Pipeline) -> None:
    prefix = pipe.settings.topic_prefix
    for service in ("processor", "sink"):  # services see new partitions within a second, not 30 s
        pipe.launch(service, [service], env={"KCOLLECT_KAFKA_CONFIG": FAST_METADATA})
    pipe.wait_ready("processor", "sink")
    enqueue(pipe, "grow-1", range(2000))
    assert pipe.wait_rows("grow-1", 2000) == 2000

    lines = _grow(pipe, 6)  # between runs
    assert sorted(lines) == sorted(
        f"{prefix}{t}: 4 -> 6 partition(s)" for t in ("requests", "requests.retry", "results")
    )
    assert all(line.endswith("6 already") for line in _grow(pipe, 6))  # idempotent
    shrink = pipe.cli("topics", "grow", "--partitions", "3")
    assert shrink.returncode == 8 and shrink.stderr.count("\n") == 1, shrink.stderr
    assert "partitions can only be added" in shrink.stderr
    enqueue(pipe, "grow-2", range(3000))
    assert pipe.wait_rows("grow-2", 3000) == 3000

    enqueue(pipe, "grow-3", range(0, 3000))  # during one run: half before, half after
    _grow(pipe, 8)
    enqueue(pipe, "grow-3", range(3000, 6000))
    assert pipe.wait_rows("grow-3", 6000, timeout=180) == 6000
    for run, clients in (("grow-1", 2000), ("grow-2", 3000), ("grow-3", 6000)):
        assert pipe.stored(run, final=True) == clients
        rows = pipe.query("SELECT uniqExact(client_id) FROM client_results WHERE run_id = %(r)s", {"r": run})
        assert rows == [(clients,)]

    results = read_topic(pipe, "results", timeout=20)
    used = {msg.partition() for msg in results}
    assert {4, 5} <= used and {6, 7} & used, used  # the new request partitions reach the new results ones
    assert pipe.stop("processor") == 0


def test_tansu_refuses_to_add_partitions(
    tansu_broker: str, clickhouse_url: str, unique_name: str, tmp_path: Path
) -> None:
    pipe = make_pipeline(tansu_broker, clickhouse_url, unique_name, tmp_path)
    assert _is_tansu(tansu_broker)
    done = pipe.cli("topics", "grow", "--partitions", "6")
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 8 and len(lines) == 1, done.stderr
    assert "refused to add partitions" in lines[0] and "Tansu cannot add partitions" in lines[0]


def _is_tansu(bootstrap: str) -> bool:
    from streams.settings.librdkafka import broker_is_tansu
    from streams.settings.model import load_settings

    return broker_is_tansu(load_settings(bootstrap_servers=bootstrap))


def test_grow_keeps_a_multiple_of_the_changelog_while_it_holds_state(pipe: Pipeline) -> None:
    """A processor with state finds a moved client's history only when the new count is a multiple of
    the changelog's (docs/state.md): with state in the changelog, 4 -> 6 is refused, 4 -> 8 is not."""
    from schemas.topics import STATE_CHANGELOG
    from streams.kafka.producer import BatchProducer, DeliveryTracker

    producer, tracker = BatchProducer(pipe.settings), DeliveryTracker()
    changelog = STATE_CHANGELOG.name(pipe.settings.topic_prefix)
    producer.produce_keyed_to_partition(changelog, 1, [(b"fleet\x00c1", b'{"v": 1, "runs": []}')], tracker)
    assert producer.wait(tracker, 30) and not tracker.failed
    refused = pipe.cli("topics", "grow", "--partitions", "6")
    assert refused.returncode == 8 and refused.stderr.count("\n") == 1, refused.stderr
    assert "grow to a multiple of 4" in refused.stderr
    assert all(line.endswith("4 already") for line in _grow(pipe, 4))  # nothing was added
    assert sorted(_grow(pipe, 8))[0].endswith("4 -> 8 partition(s)")
