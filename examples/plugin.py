"""A worked plugin: your own subsystem client and compute function, loaded by import path.

Processor config (YAML)::

    subsystems:
      - name: inventory
        kind: plugin
        factory: examples.plugin:make        # called with the SubsystemConfig, returns the client
        metrics: [disk_free_gb, mem_free_gb]
        options: {scale: 2.0}                # anything your factory wants
        batch_size: 200
        max_concurrency: 4
        timeout_seconds: 2
        retries: 3
    compute: examples.plugin:spread

The client implements ``processors.processor.subsystems.protocol.AsyncSubsystem``: ``name``, ``metrics`` and
``async fetch_async(requests) -> {metric: [value | None, ...]}`` aligned with ``requests`` (each
request is a dict with ``run_id`` and ``client_id``). Raise ``processors.processor.retry.FetchError`` for a
failed call (``retry_after=`` seconds when the service said so); the processor retries it with
backoff, counts it in the circuit breaker, and reports the metrics as missing if it keeps failing.
A compute function maps one client's ``{metric: value}`` to ``{name: value}``; it must be pure.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Sequence
from typing import Any

from processors.processor.config import SubsystemConfig
from processors.processor.retry import FetchError


class InventoryClient:
    """Pretends to ask an inventory service; a client id ending in ``-gone`` has no data."""

    def __init__(self, name: str, metrics: Sequence[str], scale: float, fail_calls: int = 0) -> None:
        self.name = name
        self.metrics = tuple(metrics)
        self.scale = scale
        self.fail_calls = fail_calls  # for the example's test: the first N calls fail
        self.calls = 0

    async def fetch_async(self, requests: Sequence[dict[str, Any]]) -> dict[str, list[float | None]]:
        self.calls += 1
        await asyncio.sleep(0)  # a real client awaits its HTTP/gRPC call here
        if self.calls <= self.fail_calls:
            raise FetchError("inventory service busy", retry_after=0.01)
        return {
            metric: [
                None
                if r["client_id"].endswith("-gone")
                else (zlib.crc32(f"{r['client_id']}/{metric}".encode()) % 1000) / 10 * self.scale
                for r in requests
            ]
            for metric in self.metrics
        }


def make(config: SubsystemConfig) -> InventoryClient:
    """The factory named in the config: builds the client from its config entry."""
    return InventoryClient(config.name, config.metrics, float(config.options.get("scale", 1.0)))


def spread(metrics: dict[str, float]) -> dict[str, float]:
    """A compute plugin: the spread and the mean of a client's values."""
    values = list(metrics.values())
    if not values:
        return {"spread": 0.0, "mean": 0.0}
    return {"spread": max(values) - min(values), "mean": sum(values) / len(values)}
