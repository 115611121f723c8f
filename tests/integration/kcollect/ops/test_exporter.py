"""The exporter on the real broker and ClickHouse: a scrape parsed with prometheus_client's parser has
lag, time lag, offsets, statuses and run progress, served from the background collection's cache; the
``kcollect exporter`` command serves the same."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kcollect.ops.exporter import LagExporter, serve
from schemas.topics import REQUESTS
from tests.integration.lagkit import commit, lag_settings, make_topic, produce
from tests.integration.pipeline import ROOT, make_pipeline

pytestmark = pytest.mark.integration


def scrape(port: int) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Metric sample name -> sorted labels -> value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def test_scrape_has_lag_offsets_status_and_run_progress(
    kafka_bootstrap: str, clickhouse_url: str, unique_name: str, tmp_path: Path
) -> None:
    pipe = make_pipeline(kafka_bootstrap, clickhouse_url, unique_name, tmp_path)
    done = pipe.cli("enqueue", "--run-id", "run-exporter", "--clients", "40", "--no-progress")
    assert done.returncode == 0, done.stderr
    requests = REQUESTS.name(f"{unique_name}.")
    group = f"{unique_name}-processor"
    commit(kafka_bootstrap, group, {(requests, 0): 1})
    exporter = LagExporter(pipe.settings, interval=0.3)
    exporter.refresh()
    server = serve(exporter, 0, "127.0.0.1")
    exporter.start()
    try:
        started = time.monotonic()
        samples = scrape(server.server_port)
        assert time.monotonic() - started < 1.0

        def key(p: int) -> tuple[tuple[str, str], ...]:
            return (("consumergroup", group), ("partition", str(p)), ("topic", requests))

        offsets = samples["kafka_topic_partition_current_offset"]
        ends = {p: int(offsets[(("partition", str(p)), ("topic", requests))]) for p in range(4)}
        assert sum(ends.values()) == 40
        assert samples["kafka_consumergroup_lag"][key(0)] == ends[0] - 1
        assert samples["kafka_consumergroup_lag"][key(1)] == ends[1]
        assert samples["kafka_consumergroup_current_offset"][key(0)] == 1
        assert key(1) not in samples["kafka_consumergroup_current_offset"]  # nothing committed there
        assert 0 <= samples["kafka_consumergroup_lag_seconds"][key(1)] < 120
        assert samples["kafka_consumergroup_status"][key(1)] == 3  # STOPPED: lag, and no member
        assert samples["kafka_consumergroup_group_status"][(("consumergroup", group),)] == 3
        run = (("run_id", "run-exporter"),)
        assert samples["kcollect_run_total"][run] == 40
        assert samples["kcollect_run_stored"][run] == 0
        assert samples["kcollect_run_dead_lettered"][run] == 0
        assert samples["kcollect_run_pending"][run] == 40
        assert samples["kcollect_lag_exporter_up"][()] == 1
        commit(kafka_bootstrap, group, {(requests, p): ends[p] for p in range(4)})
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            samples = scrape(server.server_port)
            if sum(samples["kafka_consumergroup_lag"].values()) == 0:
                break
            time.sleep(0.1)
        assert sum(samples["kafka_consumergroup_lag"].values()) == 0
        assert samples["kafka_consumergroup_status"][key(1)] == 0
    finally:
        server.shutdown()
        exporter.close()


def test_exporter_command(kafka_bootstrap: str, unique_name: str, tmp_path: Path) -> None:
    topic, group = f"{unique_name}.requests", f"{unique_name}-processor"
    make_topic(kafka_bootstrap, topic, 2)
    ends = produce(kafka_bootstrap, topic, {0: 6, 1: 4})
    commit(kafka_bootstrap, group, {(topic, 0): 6, (topic, 1): 1})
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {"KCOLLECT_BOOTSTRAP_SERVERS": kafka_bootstrap, "KCOLLECT_TOPIC_PREFIX": f"{unique_name}."}
    settings = lag_settings(kafka_bootstrap, f"{unique_name}.")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kcollect", "exporter", "--port", str(port), "--addr", "127.0.0.1"],
        env={**__import__("os").environ, **env, "PYTHONPATH": str(ROOT)},
        stderr=(tmp_path / "exporter.log").open("wb"),
        cwd=ROOT,
    )
    try:
        deadline, samples = time.monotonic() + 30, None
        while samples is None and time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "exporter.log").read_text()
            try:
                samples = scrape(port)
            except OSError:
                time.sleep(0.1)
        assert samples is not None and settings.topic_prefix == f"{unique_name}."
        lags = samples["kafka_consumergroup_lag"]
        assert lags == {
            (("consumergroup", group), ("partition", "0"), ("topic", topic)): 0,
            (("consumergroup", group), ("partition", "1"), ("topic", topic)): ends[1] - 1,
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, (tmp_path / "exporter.log").read_text()
