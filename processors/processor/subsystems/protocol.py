"""Subsystems: where metrics come from. One call fetches named metrics for a batch of clients.

The protocol is small so a deployment can plug in its own: ``name``, ``metrics`` and
``fetch(requests)``, which returns one column per metric, aligned with ``requests`` (``None`` where a
value is missing). A subsystem doing I/O should rather offer ``async fetch_async(requests)`` (see
``AsyncSubsystem``): the processor awaits it on its event loop, many calls at once. A synchronous
``fetch`` that blocks should set ``blocking = True`` so it runs in a worker thread; a fast one (the
in-process simulated subsystem) is called inline. A call that fails raises
``processors.processor.retry.FetchError`` (or any exception: it counts as a retryable failure).

The simulated subsystem is deterministic: a value is a function of run id, client id and metric
name only, so tests and the run checker can compute what every row must hold.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

Record = dict[str, Any]
Columns = dict[str, list[float | None]]

_GOLDEN = 2654435761
_MASK = 0xFFFFFFFF


class Subsystem(Protocol):
    """Fetches ``metrics`` for a batch of collection requests in one call."""

    name: str
    metrics: tuple[str, ...]

    def fetch(self, requests: Sequence[Record]) -> Columns: ...


@runtime_checkable
class AsyncSubsystem(Protocol):
    """A subsystem whose call is a coroutine (HTTP, or any async client)."""

    name: str
    metrics: tuple[str, ...]

    async def fetch_async(self, requests: Sequence[Record]) -> Columns: ...


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

    def fetch(self, requests: Sequence[Record]) -> Columns:
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
