"""Health of a long-running service over HTTP: ``/metrics``, ``/healthz`` and ``/readyz``.

The contract (docs/operations.md, "Probes"):

- the service loop calls ``probe.beat()`` on every turn (each ``consume`` call, even an empty one);
- librdkafka's ``error_cb`` is ``probe.kafka_error`` and ``stats_cb`` is ``probe.kafka_stats`` (with
  ``statistics.interval.ms`` set, see ``client_hooks``): a transport / all-brokers-down /
  authentication error marks Kafka disconnected; a statistics report with a broker ``UP``, or the loop
  calling ``probe.kafka_ok()`` after a consume that returned records, marks it connected again;
- the on-assign / on-revoke hooks call ``probe.set_assigned(n)`` with the partitions now owned.

``/healthz`` is 200 while the last beat is younger than ``max_beat_age`` seconds (the loop is alive)
and, when ``max_disconnected`` is set, Kafka has not been unreachable for longer than that; else 503.
``/readyz`` is 200 when alive, connected and (``require_assignment``) owning at least one partition.
Both answer a small JSON object with the facts. ``/metrics`` is the prometheus-client registry plus
``kcollect_service_alive``, ``kcollect_service_ready``, ``kcollect_service_assigned_partitions``,
``kcollect_service_kafka_connected`` and ``kcollect_service_last_beat_age_seconds``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from confluent_kafka import KafkaError
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from streams.settings.model import Settings

log = logging.getLogger(__name__)
DISCONNECTING_CODES = {
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError._TRANSPORT,
    KafkaError._AUTHENTICATION,
    KafkaError._RESOLVE,
    KafkaError._SSL,
    KafkaError.SASL_AUTHENTICATION_FAILED,
}


@dataclass(eq=False)
class HealthProbe:
    """What a service loop reports; read by the HTTP handlers (thread-safe enough: single writers)."""

    max_beat_age: float = 30.0
    max_disconnected: float | None = None
    require_assignment: bool = True
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self.last_beat: float | None = None
        self.assigned = 0
        self.connected = True
        self.disconnected_since: float | None = None
        self.last_error = ""

    def beat(self) -> None:
        self.last_beat = self.clock()

    def set_assigned(self, partitions: int) -> None:
        self.assigned = partitions

    def kafka_error(self, err: KafkaError) -> None:
        """librdkafka ``error_cb``: connection-level errors mark Kafka unreachable."""
        self.last_error = err.str()
        if err.code() in DISCONNECTING_CODES or err.fatal():
            if self.connected:
                log.warning("kafka unreachable: %s", err.str())
                self.disconnected_since = self.clock()
            self.connected = False

    def kafka_ok(self) -> None:
        if not self.connected:
            log.info("kafka reachable again")
        self.connected = True
        self.disconnected_since = None

    def kafka_stats(self, stats_json: str) -> None:
        """librdkafka ``stats_cb``: connected again once any broker reports state ``UP``."""
        try:
            brokers = json.loads(stats_json).get("brokers", {})
        except ValueError:
            return
        if any(b.get("state") == "UP" and b.get("nodeid", -1) >= 0 for b in brokers.values()):
            self.kafka_ok()

    def beat_age(self) -> float | None:
        return None if self.last_beat is None else self.clock() - self.last_beat

    def alive(self) -> bool:
        age = self.beat_age()
        if age is None or age > self.max_beat_age:
            return False
        if self.max_disconnected is not None and self.disconnected_since is not None:
            return self.clock() - self.disconnected_since <= self.max_disconnected
        return True

    def ready(self) -> bool:
        return self.alive() and self.connected and (self.assigned > 0 or not self.require_assignment)

    def facts(self) -> dict[str, Any]:
        age = self.beat_age()
        return {
            "alive": self.alive(),
            "ready": self.ready(),
            "connected": self.connected,
            "assigned": self.assigned,
            "last_beat_age_s": None if age is None else round(age, 3),
            "last_error": self.last_error,
        }

    def collect(self) -> Iterator[Metric]:
        """prometheus-client collector protocol."""
        age = self.beat_age()
        for name, doc, value in (
            ("alive", "1 while the service loop beats (/healthz)", self.alive()),
            ("ready", "1 while connected and assigned (/readyz)", self.ready()),
            ("kafka_connected", "1 unless librdkafka reported the brokers unreachable", self.connected),
            ("assigned_partitions", "Partitions this member owns", self.assigned),
            ("last_beat_age_seconds", "Seconds since the loop's last turn", -1.0 if age is None else age),
        ):
            yield GaugeMetricFamily(f"kcollect_service_{name}", doc, value=float(value))


def client_hooks(probe: HealthProbe, stats_interval_ms: int = 5000) -> dict[str, Any]:
    """librdkafka config entries that feed ``probe`` (merge into a consumer's or producer's config)."""
    return {
        "error_cb": probe.kafka_error,
        "stats_cb": probe.kafka_stats,
        "statistics.interval.ms": stats_interval_ms,
    }


class HealthServer:
    """A ThreadingHTTPServer on its own daemon thread serving the three paths."""

    def __init__(self, probe: HealthProbe, port: int, addr: str, registry: CollectorRegistry) -> None:
        own = CollectorRegistry(auto_describe=False)
        own.register(probe)
        handler = _handler(probe, (registry, own))
        self._server = ThreadingHTTPServer((addr, port), handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="health-http", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def _handler(probe: HealthProbe, registries: tuple[CollectorRegistry, ...]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                body = b"".join(generate_latest(r) for r in registries)
                self._send(200, body, "text/plain; version=0.0.4; charset=utf-8")
            elif path in ("/healthz", "/readyz"):
                good = probe.alive() if path == "/healthz" else probe.ready()
                self._send(200 if good else 503, json.dumps(probe.facts()).encode(), "application/json")
            else:
                self._send(404, b"not found\n", "text/plain")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


def service_health(
    settings: Settings, require_assignment: bool = True
) -> tuple[HealthProbe, HealthServer | None]:
    """The probe of a service and, when ``KCOLLECT_HTTP_PORT`` is set, its running HTTP server."""
    probe = HealthProbe(settings.healthz_max_age_seconds, require_assignment=require_assignment)
    server = (
        start_health_server(probe, settings.http_port, settings.http_addr) if settings.http_port else None
    )
    return probe, server


def start_health_server(
    probe: HealthProbe, port: int, addr: str = "0.0.0.0", registry: CollectorRegistry = REGISTRY
) -> HealthServer:
    """Serve ``/metrics``, ``/healthz`` and ``/readyz`` for ``probe`` on ``addr:port`` (0: any free port)."""
    server = HealthServer(probe, port, addr, registry)
    log.info("health and metrics on http://%s:%d (/metrics /healthz /readyz)", addr, server.port)
    return server
