"""The worked plugin example, end to end through the processor's fetch path (no broker needed)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from examples.plugin import InventoryClient, spread
from processors.processor.caller import SubsystemCaller
from processors.processor.config import parse_config
from processors.processor.fetcher import Decoded
from processors.processor.service import make_fetcher
from schemas.result_batch import expand_batch
from streams.settings.model import Settings

CONFIG = {
    "subsystems": [
        {
            "name": "inventory",
            "kind": "plugin",
            "factory": "examples.plugin:make",
            "metrics": ["disk_free_gb", "mem_free_gb"],
            "options": {"scale": 2.0},
            "batch_size": 2,
            "retries": 3,
            "backoff_base_seconds": 0.001,
        }
    ],
    "compute": "examples.plugin:spread",
}


def requests(ids: list[str]) -> list[dict[str, Any]]:
    return [{"v": 1, "run_id": "r", "client_id": c, "requested_at_ms": 1, "attempt": 0} for c in ids]


def test_plugin_loaded_from_config_fetches_and_computes() -> None:
    fetcher = make_fetcher(parse_config(CONFIG), Settings())
    client = fetcher.callers[0].client
    assert isinstance(client, InventoryClient) and client.scale == 2.0
    batch = requests(["a", "b", "c-gone"])
    outcome = asyncio.run(fetcher.process(Decoded(batch, [None] * 3)))  # type: ignore[list-item]
    assert outcome.failures == []
    assert client.calls == 2  # batch_size 2: two calls for three clients
    results = [r for b in outcome.encoded for r in expand_batch(orjson.loads(b.value))]
    by_client = {r["client_id"]: r for r in results}
    assert by_client["a"]["status"] == "ok" and by_client["a"]["computed"] == spread(
        by_client["a"]["metrics"]
    )
    assert by_client["c-gone"]["status"] == "partial"
    assert by_client["c-gone"]["missing"] == ["disk_free_gb", "mem_free_gb"]


def test_plugin_failures_are_retried_with_retry_after() -> None:
    config = parse_config(CONFIG).subsystems[0]
    client = InventoryClient("inventory", config.metrics, 1.0, fail_calls=2)
    caller = SubsystemCaller(client, config)
    columns = asyncio.run(caller.call(requests(["x"])))
    assert client.calls == 3 and columns["disk_free_gb"][0] is not None
