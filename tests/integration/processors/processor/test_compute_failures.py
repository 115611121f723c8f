"""A compute plugin that raises for some clients, on the real broker: those clients are dead-lettered
(stage compute, reason compute_failed, the exception in the headers), the others are stored as
results, and the processor keeps running (before: the processor exited, and every restart again)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from processors.processor.compute import summary
from streams.kafka.dead_letter import header_map
from tests.integration.pipeline import make_pipeline
from tests.integration.processors.processor.test_kit import enqueue, read_results, read_topic, start_processor

pytestmark = pytest.mark.integration
CLIENTS = 2_000


def fails_for_multiples_of_seven(metrics: dict[str, float]) -> dict[str, float]:
    """The plugin compute function: ``summary``, but it raises when ``uptime`` rounds to a multiple of 7."""
    if round(metrics.get("uptime", 1.0)) % 7 == 0:
        raise ZeroDivisionError("plugin bug")
    return summary(metrics)


def test_a_raising_compute_plugin_dead_letters_those_clients_and_the_processor_runs_on(
    kafka_bootstrap: str, clickhouse_url: str, unique_name: str, tmp_path: Path
) -> None:
    pipe = make_pipeline(kafka_bootstrap, clickhouse_url, unique_name, tmp_path)
    config = tmp_path / "processor.json"
    plugin = f"{__name__}:fails_for_multiples_of_seven"
    subsystems = [{"name": "alpha", "kind": "simulated", "metrics": ["uptime"]}]
    config.write_bytes(orjson.dumps({"subsystems": subsystems, "compute": plugin}))
    pipe.env |= {"KCOLLECT_PROCESSOR_CONFIG": str(config)}
    try:
        processor = start_processor(pipe, "proc")
        pipe.wait_ready("proc")
        enqueue(pipe, "plug-1", range(CLIENTS))
        dead = read_topic(pipe, "requests.dlq", timeout=30)
        results = read_results(pipe, CLIENTS - len(dead), timeout=60)
        assert dead, "some clients' uptime rounds to a multiple of 7"
        headers = [header_map(msg.headers()) for msg in dead]
        assert {(h["stage"], h["reason"], h["error_class"]) for h in headers} == {
            ("compute", "compute_failed", "ZeroDivisionError")
        }
        dead_ids = {orjson.loads(msg.value())["client_id"] for msg in dead}
        stored_ids = {r["client_id"] for r in results}
        assert len(dead_ids) == len(dead) and not dead_ids & stored_ids
        assert dead_ids | stored_ids == {str(i) for i in range(CLIENTS)}
        assert all(round(r["metrics"]["uptime"]) % 7 for r in results)
        assert processor.poll() is None, pipe.log("proc")
        assert pipe.stop("proc") == 0
    finally:
        pipe.kill_all()
