"""The built-in simulated subsystems: deterministic, in-process, with an optional latency per call.

A value is a function of run id, client id and metric name only, so tests and the run checker can
compute what every row must hold (``simulated_check``).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Sequence
from typing import Any

from processors.processor.subsystems.protocol import MetricColumns, Record, Subsystem

_GOLDEN = 2654435761
_MASK = 0xFFFFFFFF


def _client_hash(run_id: str, client_id: str) -> int:
    return zlib.crc32(f"{run_id}\x00{client_id}".encode())


def _salt(metric: str) -> int:
    return zlib.crc32(metric.encode())


def _value(client_hash: int, salt: int) -> float:
    return (((client_hash ^ salt) * _GOLDEN) & _MASK) % 100000 / 100.0


def simulated_value(run_id: str, client_id: str, metric: str) -> float:
    """The value the simulated subsystems report: 0.00 to 999.99, a pure function of its arguments."""
    return _value(_client_hash(run_id, client_id), _salt(metric))


class SimulatedSubsystem:
    """An in-process subsystem with deterministic values and an optional latency per batch call."""

    def __init__(self, name: str, metrics: Sequence[str], latency_seconds: float = 0.0) -> None:
        self.name = name
        self.metrics = tuple(metrics)
        self._salts = [(metric, _salt(metric)) for metric in self.metrics]
        self._latency = latency_seconds
        self.blocking = latency_seconds > 0
        self.calls = 0

    def fetch(self, requests: Sequence[Record]) -> MetricColumns:
        self.calls += 1
        if self._latency:
            time.sleep(self._latency)
        hashes = [_client_hash(r["run_id"], r["client_id"]) for r in requests]
        golden, mask = _GOLDEN, _MASK  # _value inlined: this is the benchmark's hot path
        return {
            metric: [(((h ^ salt) * golden) & mask) % 100000 / 100.0 for h in hashes]
            for metric, salt in self._salts
        }


DEFAULT_METRICS: dict[str, tuple[str, ...]] = {
    "alpha": ("uptime",),
    "beta": tuple(f"load_{i}" for i in range(10)),
}


def default_subsystems(latency_seconds: float = 0.0) -> list[Subsystem]:
    """The reference set: subsystem alpha gives 1 metric, beta gives 10 (11 per client)."""
    return [SimulatedSubsystem(name, metrics, latency_seconds) for name, metrics in DEFAULT_METRICS.items()]


def simulated_check(run_id: str, client_id: str, metrics: dict[str, Any]) -> list[str]:
    """The run checker's value check for the simulated subsystems (and ``kcollect simulate``): the
    names of the metrics whose stored value is not the simulated one."""
    return [m for m, v in metrics.items() if v is not None and v != simulated_value(run_id, client_id, m)]
