"""HealthProbe's rules (streams/observability/health.py) on a fake clock, and its HTTP answers."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import orjson
from confluent_kafka import KafkaError

from streams.observability.health import HealthProbe, client_hooks, start_health_server


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_alive_follows_the_beat_and_ready_needs_connection_and_assignment() -> None:
    clock = Clock()
    probe = HealthProbe(max_beat_age=5, clock=clock)
    assert not probe.alive() and not probe.ready()  # never beaten
    probe.beat()
    assert probe.alive() and not probe.ready()  # no partition yet
    probe.set_assigned(3)
    assert probe.ready()
    clock.now += 6
    assert not probe.alive() and not probe.ready()
    probe.beat()
    probe.kafka_error(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
    assert probe.alive() and not probe.ready() and "brokers are down" in probe.facts()["last_error"]
    probe.kafka_error(KafkaError(KafkaError._MSG_TIMED_OUT))  # not a connection error: no change
    assert not probe.connected
    probe.kafka_stats(json.dumps({"brokers": {"b": {"state": "UP", "nodeid": 1}}}))
    assert probe.ready()
    assert not HealthProbe(require_assignment=True).ready()
    standby = HealthProbe(require_assignment=False, clock=clock)
    standby.beat()
    assert standby.ready()


def test_max_disconnected_fails_liveness_after_a_long_outage() -> None:
    clock = Clock()
    probe = HealthProbe(max_beat_age=5, max_disconnected=30, clock=clock)
    probe.beat()
    probe.kafka_error(KafkaError(KafkaError._TRANSPORT, "connection refused"))
    clock.now += 20
    probe.beat()
    assert probe.alive()
    clock.now += 11
    probe.beat()
    assert not probe.alive()
    probe.kafka_stats(json.dumps({"brokers": {"bootstrap": {"state": "UP", "nodeid": -1}}}))
    assert not probe.alive()  # a bootstrap connection is not a broker
    probe.kafka_ok()
    assert probe.alive()


def test_hooks_and_http_answers() -> None:
    probe = HealthProbe()
    hooks = client_hooks(probe, 1000)
    assert hooks["error_cb"] == probe.kafka_error and hooks["statistics.interval.ms"] == 1000
    server = start_health_server(probe, 0, "127.0.0.1")
    try:
        url = f"http://127.0.0.1:{server.port}"
        try:
            urllib.request.urlopen(url + "/healthz", timeout=2)
            raise AssertionError("expected 503")
        except urllib.error.HTTPError as exc:
            assert exc.code == 503 and orjson.loads(exc.read())["alive"] is False
        probe.beat()
        probe.set_assigned(1)
        for path in ("/healthz", "/readyz"):
            with urllib.request.urlopen(url + path, timeout=2) as answer:
                assert answer.status == 200 and orjson.loads(answer.read())["assigned"] == 1
        with urllib.request.urlopen(url + "/metrics", timeout=2) as answer:
            text = answer.read().decode()
        assert "kcollect_service_alive 1.0" in text and "kcollect_service_assigned_partitions 1.0" in text
        try:
            urllib.request.urlopen(url + "/nope", timeout=2)
        except urllib.error.HTTPError as exc:
            assert exc.code == 404
    finally:
        server.close()
