"""Records larger than a topic takes: result batches are cut by bytes, a single result that does not fit
alone is dead-lettered cut with its hash, and the processor keeps running and committing.

On Apache Kafka the limit is the results topic's own ``max.message.bytes`` (the broker refuses larger
batches); on Tansu, which enforces none, it is ``KCOLLECT_MAX_MESSAGE_BYTES`` (kcollect's own limit).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from streams.kafka.dead_letter import header_map
from tests.integration.pipeline import Pipeline, make_pipeline
from tests.integration.processors.processor.test_kit import client_results, enqueue, read_topic

pytestmark = pytest.mark.integration
LIMIT = 8192


def _config(pipe: Pipeline, metrics: int) -> Path:
    config = {"subsystems": [{"name": "wide", "metrics": [f"metric_{i:03d}" for i in range(metrics)]}]}
    path = pipe.workdir / f"wide-{metrics}.json"
    path.write_bytes(orjson.dumps(config))
    return path


def _limit_results_topic(pipe: Pipeline) -> None:
    admin = AdminClient({"bootstrap.servers": pipe.settings.kafka_bootstrap()})
    entry = ConfigEntry("max.message.bytes", str(LIMIT), incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource("topic", f"{pipe.settings.topic_prefix}results", incremental_configs=[entry])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(30)


@pytest.fixture(params=["kafka-topic-limit", "tansu-own-limit"])
def pipe(
    request: pytest.FixtureRequest, clickhouse_url: str, unique_name: str, tmp_path: Path
) -> Iterator[Pipeline]:
    """Apache Kafka with the results topic's max.message.bytes at LIMIT; Tansu (which enforces no limit)
    with KCOLLECT_MAX_MESSAGE_BYTES at LIMIT."""
    extra = {"KCOLLECT_CONSUME_BATCH": "2000", "KCOLLECT_PROCESSOR_DLQ_GUARD_RATIO": "1"}
    if request.param == "tansu-own-limit":
        extra["KCOLLECT_MAX_MESSAGE_BYTES"] = str(LIMIT)
    broker = request.getfixturevalue(
        "apache_kafka" if request.param == "kafka-topic-limit" else "tansu_broker"
    )
    pipeline = make_pipeline(broker, clickhouse_url, unique_name, tmp_path, **extra)
    if request.param == "kafka-topic-limit":
        _limit_results_topic(pipeline)
    yield pipeline
    pipeline.kill_all()


def test_big_batches_are_cut_and_every_client_is_stored(pipe: Pipeline) -> None:
    pipe.env["KCOLLECT_PROCESSOR_CONFIG"] = str(_config(pipe, 20))  # ~300 bytes a client: ~600 KB a batch
    enqueue(pipe, "size-1", range(4000))
    pipe.start("processor")
    pipe.start("sink")
    assert pipe.wait_rows("size-1", 4000, timeout=120) == 4000
    records = read_topic(pipe, "results", lambda got: len(client_results(got)) >= 4000, timeout=30)
    assert len(records) > 40, "the batches must have been cut"
    assert max(len(r.value()) for r in records) <= LIMIT
    assert sorted(r["client_id"] for r in client_results(records)) == sorted(str(i) for i in range(4000))
    assert read_topic(pipe, "requests.dlq", timeout=2) == []
    assert pipe.stop("processor") == 0


def test_a_result_too_large_alone_is_dead_lettered_cut_with_its_hash(pipe: Pipeline) -> None:
    pipe.env["KCOLLECT_PROCESSOR_CONFIG"] = str(_config(pipe, 800))  # ~14 KB a client: never fits
    enqueue(pipe, "size-2", range(30))
    pipe.start("processor")
    dead = read_topic(pipe, "requests.dlq", lambda got: len(got) >= 30, timeout=90)
    assert sorted(m.key().decode() for m in dead) == sorted(str(i) for i in range(30))
    for msg in dead:
        headers = header_map(msg.headers())
        assert headers["stage"] == "produce" and headers["reason"] == "too_large"
        assert headers["error_class"] == "RecordTooLarge" and headers["run_id"] == "size-2"
        length = int(headers["original_truncated"])
        assert length > LIMIT > len(msg.value())
        assert len(msg.value()) + sum(len(k) + len(v or b"") for k, v in msg.headers()) < LIMIT
        assert headers["original_sha256"] != hashlib.sha256(msg.value()).hexdigest()  # of the whole row
        assert msg.value().startswith(b'{"v":1,"kind":"result_batch"')
    # the processor is still up, committed, and serves the next run (batches that fit go through)
    time.sleep(1)
    assert pipe.procs["processor"].poll() is None, pipe.log("processor")
    assert read_topic(pipe, "results", timeout=2) == []
    assert _requests_lag(pipe) == 0  # every oversized request's offset was committed
    assert pipe.stop("processor") == 0


def _requests_lag(pipe: Pipeline, timeout: float = 30) -> int | None:
    deadline = time.monotonic() + timeout
    lag: int | None = None
    while time.monotonic() < deadline:
        done = pipe.cli("lag", "--json", "--samples", "1", "--group", pipe.settings.processor_group)
        assert done.returncode == 0, done.stderr
        rows = [row for row in orjson.loads(done.stdout) if row["topic"].endswith(".requests")]
        lag = sum(row["lag"] for row in rows) if rows else None
        if lag == 0:
            return lag
        time.sleep(1)
    return lag
