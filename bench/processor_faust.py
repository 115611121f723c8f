"""The faust-streaming comparison for bench/processor: the same N requests through a faust agent.

Runs ``bench.faust_peer`` (one agent doing decode -> the 11 simulated metrics -> summary -> produce,
one record at a time, the idiomatic faust shape) as a worker on a fresh topic prefix, and clocks
from the worker's start to the moment its group's committed offsets on the requests topic cover N
(faust commits every ``broker_commit_every`` records or 2.8 s, so the end is up to ~3 s late).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from streams.kafka.committed import CommittedOffsets
from streams.settings.model import Settings

ROOT = Path(__file__).resolve().parents[1]


def bench_faust(settings: Settings, n: int, enqueue: Callable[..., float]) -> dict[str, Any]:

    from bench.processor import committed

    try:
        import faust  # noqa: F401
    except ImportError as exc:
        return {"mode": "faust-streaming agent", "error": f"not installed: {exc}"}
    enqueue(settings, n, **{"compression.type": "none"})  # aiokafka here has no lz4 codec
    app_id = f"{settings.topic_prefix}faust"
    env = dict(os.environ) | {
        "FAUST_PEER_BROKER": settings.kafka_bootstrap(),
        "FAUST_PEER_REQUESTS": f"{settings.topic_prefix}requests",
        "FAUST_PEER_RESULTS": f"{settings.topic_prefix}results",
        "FAUST_PEER_APP": app_id,
        "FAUST_PEER_PARTITIONS": "8",
        "PYTHONPATH": str(ROOT),
    }
    log = Path(f"/tmp/{app_id}log")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.faust_peer", "worker", "--without-web", "-l", "warn"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    reader = CommittedOffsets(settings)
    group = settings.model_copy(update={"processor_group": app_id})
    started = time.monotonic()
    done = 0
    try:
        while (done := committed(group, reader)) < n and time.monotonic() - started < 300:
            if proc.poll() is not None:
                return {"mode": "faust-streaming agent", "error": log.read_text()[-500:]}
            time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(30)
        reader.close()
    seconds = time.monotonic() - started
    return {
        "mode": "faust-streaming agent (bench/faust_peer.py)",
        "clients": n,
        "committed": done,
        "seconds_from_worker_start": round(seconds, 2),
        "clients_per_s": round(done / seconds),
    }
