"""The work every peer harness does per request (bench/plain_peer.py, bench/faust_peer.py): the simulated
subsystems' metrics for one client and the built-in summary, as one ClientResult record's JSON."""

from __future__ import annotations

import time
from typing import Any

import orjson

from processors.processor.compute import summary
from processors.processor.subsystems.simulated import DEFAULT_METRICS, simulated_value

METRICS = tuple(m for metrics in DEFAULT_METRICS.values() for m in metrics)


def collect_one(request: dict[str, Any]) -> bytes:
    run_id, client_id = request["run_id"], request["client_id"]
    metrics = {m: simulated_value(run_id, client_id, m) for m in METRICS}
    return orjson.dumps(
        {
            "v": 1,
            "run_id": run_id,
            "client_id": client_id,
            "requested_at_ms": request["requested_at_ms"],
            "attempt": request.get("attempt", 0),
            "collected_at_ms": int(time.time() * 1000),
            "status": "ok",
            "metrics": metrics,
            "missing": [],
            "computed": summary(metrics),
        }
    )
