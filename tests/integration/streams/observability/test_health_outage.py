"""`/healthz` and `/readyz` (streams/observability/health.py) follow a real consumer loop through a broker
outage.

A private Tansu broker on a fixed port is stopped and started again on the same port; a consumer loop
written here (the shape the services' loop has: beat every turn, ``error_cb`` / ``stats_cb`` from
``client_hooks``, ``set_assigned`` from the rebalance callbacks) feeds a ``HealthProbe`` served over
HTTP. Wiring the probe into ``streams/steps/service.py`` is the lead's; a service-level test comes with it.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from kcollect.localstack.ports import free_port
from kcollect.localstack.stack import start_tansu, stop_process
from streams.observability.health import HealthProbe, client_hooks, start_health_server

pytestmark = pytest.mark.integration
TOPIC = "health-probe"


def status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"not {what} within {timeout} s"
        time.sleep(0.1)
    return time.monotonic() - started


def create_topic(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(TOPIC, 2, 1)]).values():
        try:
            future.result(10)
        except Exception as exc:
            assert "already exists" in str(exc).lower() or "TOPIC_ALREADY_EXISTS" in str(exc), exc


class Loop:
    """A minimal service loop on its own thread: consume, beat, report assignment and broker state."""

    def __init__(self, bootstrap: str, probe: HealthProbe) -> None:
        self.probe, self.stop, self.paused = probe, threading.Event(), threading.Event()
        config = {"bootstrap.servers": bootstrap, "group.id": "health-loop", "session.timeout.ms": 2000,
                  "heartbeat.interval.ms": 400, "fetch.queue.backoff.ms": 20, "group.protocol": "classic",
                  "reconnect.backoff.max.ms": 500, **client_hooks(probe, 300)}  # fmt: skip
        self.consumer = Consumer(config)
        self.consumer.subscribe([TOPIC], on_assign=self._assigned, on_revoke=self._revoked)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.probe.set_assigned(len(partitions))

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.probe.set_assigned(0)

    def _run(self) -> None:
        while not self.stop.is_set():
            if self.paused.is_set():  # a stuck loop: no turns, no beats
                time.sleep(0.05)
                continue
            messages = self.consumer.consume(100, 0.1)
            self.probe.beat()
            if any(m.error() is None for m in messages):
                self.probe.kafka_ok()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.consumer.close()


def test_probes_follow_a_broker_outage_and_a_stuck_loop(tmp_path: Path) -> None:
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    first = start_tansu(tmp_path / "b0", port)
    second = None
    create_topic(bootstrap)
    probe = HealthProbe(max_beat_age=1.5, max_disconnected=3.0)
    server = start_health_server(probe, 0, "127.0.0.1")
    loop = Loop(bootstrap, probe)
    try:
        assert status(server.port, "/readyz") == 503  # not assigned yet
        wait_for(lambda: status(server.port, "/readyz") == 200, 20, "ready")
        assert status(server.port, "/healthz") == 200
        assert (
            b"kcollect_service_ready 1.0"
            in urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=2).read()
        )

        stop_process(first)  # the broker goes away
        wait_for(lambda: status(server.port, "/readyz") == 503, 15, "unready after the broker stopped")
        assert status(server.port, "/healthz") == 200  # the loop is alive: no restart yet
        wait_for(lambda: status(server.port, "/healthz") == 503, 10, "unhealthy after 3 s disconnected")
        assert not probe.connected and probe.last_error

        second = start_tansu(tmp_path / "b1", port)  # back, same port (memory storage: topics are new)
        create_topic(bootstrap)
        wait_for(lambda: status(server.port, "/healthz") == 200, 30, "healthy after the broker returned")
        wait_for(lambda: status(server.port, "/readyz") == 200, 30, "ready after the broker returned")

        loop.paused.set()  # the loop stops turning: liveness fails, so does readiness
        wait_for(lambda: status(server.port, "/healthz") == 503, 5, "unhealthy with a stuck loop")
        assert status(server.port, "/readyz") == 503
        loop.paused.clear()
        wait_for(lambda: status(server.port, "/healthz") == 200, 5, "healthy again")
    finally:
        loop.close()
        server.close()
        for record in (first, second):
            if record is not None:
                stop_process(record)
