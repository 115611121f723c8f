"""The lag gate on the real broker: pauses when the group's lag goes above the high mark, stays paused
between the marks, resumes at or below the low mark; the state is a metric."""

from __future__ import annotations

import time

import pytest
from prometheus_client import REGISTRY

from processors.processor.service import results_lag_gate
from streams.lag.gate import LagGate
from tests.integration.lagkit import commit, lag_settings, make_topic, produce

pytestmark = pytest.mark.integration


def _until(condition: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_gate_pauses_above_high_and_resumes_at_low(kafka_bootstrap: str, unique_name: str) -> None:
    topic, group = f"{unique_name}.results", f"{unique_name}-sink"
    make_topic(kafka_bootstrap, topic, 2)
    settings = lag_settings(kafka_bootstrap, f"{unique_name}.")
    gate = LagGate(settings, group, topic, high=500, low=100, interval=0.2)
    labels = {"consumergroup": group, "topic": topic}

    def metric() -> float | None:
        return REGISTRY.get_sample_value("kcollect_lag_gate_paused", labels)

    try:
        assert _until(lambda: gate.lag == 0) and not gate.paused() and metric() == 0
        produce(kafka_bootstrap, topic, {0: 400, 1: 400})  # lag 800 > 500
        assert _until(gate.paused), gate.lag
        assert metric() == 1 and REGISTRY.get_sample_value("kcollect_lag_gate_lag", labels) == 800
        commit(kafka_bootstrap, group, {(topic, 0): 200, (topic, 1): 200})  # lag 400: between the marks
        assert _until(lambda: gate.lag == 400)
        time.sleep(0.3)
        assert gate.paused() and not gate.wait_resumed(0.1)
        commit(kafka_bootstrap, group, {(topic, 0): 360, (topic, 1): 350})  # lag 90 <= 100
        assert gate.wait_resumed(10.0) and gate.lag == 90
        assert not gate.paused() and metric() == 0
    finally:
        gate.close()


def test_gate_for_results_uses_the_settings(kafka_bootstrap: str, unique_name: str) -> None:
    make_topic(kafka_bootstrap, f"{unique_name}.results", 1)
    settings = lag_settings(
        kafka_bootstrap, f"{unique_name}.", sink_group=f"{unique_name}-sink", results_lag_high=10,
        results_lag_low=2, results_lag_interval_seconds=0.2,
    )  # fmt: skip
    gate = results_lag_gate(settings)
    assert gate is not None
    try:
        produce(kafka_bootstrap, f"{unique_name}.results", {0: 11})
        assert _until(gate.paused)
        assert (gate.group, gate.topic, gate.high, gate.low) == (
            f"{unique_name}-sink", f"{unique_name}.results", 10, 2
        )  # fmt: skip
    finally:
        gate.close()
    assert not gate.paused()
    assert results_lag_gate(lag_settings(kafka_bootstrap, "x.", results_lag_high=0)) is None


def test_gate_counts_partitions_added_while_it_runs(apache_kafka: str, unique_name: str) -> None:
    """`kcollect topics grow` under a running gate: the lag of the new partitions holds it too."""
    from confluent_kafka.admin import AdminClient, NewPartitions  # type: ignore[attr-defined]

    topic, group = f"{unique_name}.results", f"{unique_name}-sink"
    make_topic(apache_kafka, topic, 2)
    settings = lag_settings(apache_kafka, f"{unique_name}.")
    gate = LagGate(settings, group, topic, high=500, low=100, interval=0.2)
    try:
        assert _until(lambda: gate.lag == 0) and not gate.paused()
        admin = AdminClient({"bootstrap.servers": apache_kafka})
        for future in admin.create_partitions([NewPartitions(topic, 4)]).values():
            future.result(30)
        produce(apache_kafka, topic, {3: 800})  # only in a partition the gate did not know at start
        assert _until(gate.paused), gate.lag
        assert gate.lag == 800
    finally:
        gate.close()
