"""The stateful example: its counters fetched through the processor's fetch path, then two runs through
the state math with the built-in computes and the plug-in (no broker needed; the integration tests
run the same config through real processes)."""

from __future__ import annotations

import asyncio
from typing import Any

from examples.stateful import counter_rate, smoothed_rate
from processors.processor.config import parse_config
from processors.processor.fetcher import Decoded
from processors.processor.service import make_fetcher
from processors.processor.state.history import FIRST_SIGHT, RESET, History, StateSpec, apply_run
from streams.runs.identity import schedule_slot
from streams.settings.model import Settings

RESET_AT = 1767225630  # 2026-01-01T00:00:30Z
CONFIG = {
    "subsystems": [
        {
            "name": "traffic",
            "kind": "plugin",
            "factory": "examples.stateful:make_counters",
            "metrics": ["bytes_sent", "errors"],
            "options": {"reset_after": RESET_AT},
        }
    ],
    "state": {
        "metrics": {"bytes_sent": ["increase", "rate"], "errors": ["delta"]},
        "compute": "examples.stateful:smoothed_rate",
    },
}
RUNS = ["fleet-20260101T000000Z", "fleet-20260101T000100Z", "fleet-20260101T000200Z"]


def fetch(run_id: str, clients: list[str]) -> dict[str, list[Any]]:
    config = parse_config(CONFIG)
    fetcher = make_fetcher(config, Settings())
    requests = [
        {"v": 1, "run_id": run_id, "client_id": c, "requested_at_ms": 1, "attempt": 0} for c in clients
    ]
    outcome = asyncio.run(fetcher.process(Decoded(requests, [], [0] * len(requests))))
    assert outcome.collected is not None and not outcome.encoded  # encoding waits for the state step
    return outcome.collected.columns


def test_counters_become_increases_rates_and_a_smoothed_rate() -> None:
    spec = StateSpec({"bytes_sent": ("increase", "rate"), "errors": ("delta",)}, plugin=smoothed_rate)
    clients = ["web-1", "reset-db"]
    history: dict[str, History] = {c: () for c in clients}
    seen: list[dict[str, dict[str, float]]] = []
    for seq, run_id in enumerate(RUNS, start=1):
        columns = fetch(run_id, clients)
        slot = schedule_slot(run_id)
        assert slot is not None
        outputs = {}
        for i, client in enumerate(clients):
            step = apply_run(
                history[client], run_id, slot[1], seq, {k: v[i] for k, v in columns.items()}, spec
            )
            history[client] = step.history or history[client]
            outputs[client] = step.outputs
        seen.append(outputs)
    rate = counter_rate("web-1")
    assert seen[0]["web-1"] == {"bytes_sent_reason": float(FIRST_SIGHT), "errors_reason": float(FIRST_SIGHT)}
    assert seen[1]["web-1"]["bytes_sent_increase"] == 60.0 * rate
    assert seen[1]["web-1"]["bytes_sent_rate"] == float(rate)
    assert seen[1]["web-1"]["bytes_sent_smoothed_rate"] == float(rate)
    assert seen[1]["web-1"]["errors_delta"] == 1.0
    # reset-db restarted at :30: run 2 sees 30 s worth, less than run 1's value: a reset
    db = seen[1]["reset-db"]
    assert db["bytes_sent_reason"] == float(RESET)
    assert db["bytes_sent_increase"] == 30.0 * counter_rate("reset-db")
    assert db["bytes_sent_rate"] == 0.5 * counter_rate("reset-db")
    assert seen[2]["reset-db"]["bytes_sent_reason"] == 0.0
    assert seen[2]["reset-db"]["bytes_sent_smoothed_rate"] == 0.75 * counter_rate("reset-db")
