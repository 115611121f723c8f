"""The exporter follows kafka_exporter's convention: a scrape of the running ``kcollect exporter`` command,
parsed with prometheus_client's parser, has kafka_exporter's metric names with exactly its label sets
(``consumergroup``, ``topic``, ``partition``), the group sums and maxima, and a REWIND status once a
committed offset moves backwards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from kcollect.localstack.ports import free_port
from streams.lag.status import Status
from tests.integration.lagkit import commit, make_topic, produce

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[4]

# kafka_exporter's families (danielqsj/kafka_exporter README) and kcollect's additions, with their labels.
KAFKA_EXPORTER = {
    "kafka_consumergroup_lag": {"consumergroup", "topic", "partition"},
    "kafka_consumergroup_lag_sum": {"consumergroup", "topic"},
    "kafka_consumergroup_current_offset": {"consumergroup", "topic", "partition"},
    "kafka_consumergroup_current_offset_sum": {"consumergroup", "topic"},
    "kafka_topic_partition_current_offset": {"topic", "partition"},
    "kafka_consumergroup_members": {"consumergroup"},  # only where the broker lists members (not Tansu)
}
ADDITIONS = {
    "kafka_consumergroup_lag_seconds": {"consumergroup", "topic", "partition"},
    "kafka_consumergroup_lag_max": {"consumergroup", "topic"},
    "kafka_consumergroup_lag_seconds_max": {"consumergroup", "topic"},
    "kafka_consumergroup_status": {"consumergroup", "topic", "partition"},
    "kafka_consumergroup_group_status": {"consumergroup"},
}


def scrape(port: int) -> list[Sample]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def values(samples: list[Sample], name: str) -> dict[tuple[str, ...], float]:
    return {tuple(v for _, v in sorted(s.labels.items())): s.value for s in samples if s.name == name}


@pytest.fixture
def exporter_port(kafka_bootstrap: str, unique_name: str, tmp_path: Path) -> Iterator[int]:
    port = free_port()
    env = os.environ | {
        "KCOLLECT_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KCOLLECT_TOPIC_PREFIX": f"{unique_name}.",
    }
    log = tmp_path / "exporter.log"
    args = ["exporter", "--port", str(port), "--addr", "127.0.0.1", "--interval", "0.5", "--no-runs"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "kcollect", *args], env=env, stderr=log.open("wb"), cwd=ROOT
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                scrape(port)
                break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()


def wait_for(port: int, check: object, timeout: float = 20.0) -> list[Sample]:
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(port)
        if callable(check) and check(samples):
            return samples
        assert time.monotonic() < deadline, "condition not met; last scrape: " + repr(samples[:40])
        time.sleep(0.2)


def test_names_labels_sums_maxima_and_rewind(
    kafka_bootstrap: str, unique_name: str, exporter_port: int
) -> None:
    topic, group = f"{unique_name}.requests", f"{unique_name}-processor"
    make_topic(kafka_bootstrap, topic, 2)
    ends = produce(kafka_bootstrap, topic, {0: 6, 1: 4})
    commit(kafka_bootstrap, group, {(topic, 0): 5, (topic, 1): 1})

    def measured(samples: list[Sample]) -> bool:
        return values(samples, "kafka_consumergroup_lag").get((group, "0", topic)) == ends[0] - 5

    samples = wait_for(exporter_port, measured)
    ours = [s for s in samples if s.name.startswith("kafka_") and s.labels.get("topic", topic) == topic]
    for sample in ours:
        expected = KAFKA_EXPORTER.get(sample.name) or ADDITIONS.get(sample.name)
        assert expected is not None, f"{sample.name} is neither kafka_exporter's nor a documented addition"
        assert set(sample.labels) == expected, sample
    assert {s.name for s in ours} >= (set(KAFKA_EXPORTER) | set(ADDITIONS)) - {"kafka_consumergroup_members"}
    assert not [s for s in samples if "group" in s.labels]  # kafka_exporter has no label named group
    lag_0, lag_1 = ends[0] - 5, ends[1] - 1
    assert values(samples, "kafka_consumergroup_lag_sum") == {(group, topic): lag_0 + lag_1}
    assert values(samples, "kafka_consumergroup_lag_max") == {(group, topic): max(lag_0, lag_1)}
    assert values(samples, "kafka_consumergroup_current_offset_sum") == {(group, topic): 6}
    assert (group, topic) in values(samples, "kafka_consumergroup_lag_seconds_max")

    commit(kafka_bootstrap, group, {(topic, 0): 2})  # backwards: records 2..4 will be consumed again

    def rewound(samples: list[Sample]) -> bool:
        return values(samples, "kafka_consumergroup_status").get((group, "0", topic)) == Status.REWIND

    samples = wait_for(exporter_port, rewound)
    assert values(samples, "kafka_consumergroup_group_status") == {(group,): Status.REWIND}
    assert values(samples, "kafka_consumergroup_lag")[(group, "0", topic)] == ends[0] - 2
