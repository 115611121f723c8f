"""bench/state_stage: the processor's state step alone, with a real producer, per client and per part.

``python -m bench.state_stage [--clients 100000] [--runs 3] [--config on|counters]``. One Tansu broker
of its own (memory storage), the changelog topic with 8 partitions, one ``StateStores`` owning all of
them, and ``--runs`` scheduled runs of the same clients in batches of 5,000, with values like the
simulated subsystems' (0.00-999.99, new each run) for the 11 metrics; ``--config`` is bench/state's
(``on``: every metric stateful, ``counters``: ``uptime: [increase, rate]``). Per run it prints the
process CPU seconds per client (librdkafka's threads included) of the whole step
(``StateStores.apply``) and of its parts: ``apply_wave`` (the history math), the wave's reads and
writes around it, the changelog produce, the local store's ``put`` (which holds the bulk flush of
every second run). The parts are timed by wrapping the functions, which adds a little to each.
"""

from __future__ import annotations

import argparse
import functools
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import processors.processor.state.manager as manager
from bench.state import state_metrics
from processors.processor.state.history import StateSpec
from processors.processor.state.store import PartitionStore
from processors.processor.subsystems.simulated import DEFAULT_METRICS
from schemas.topics import REQUESTS, STATE_CHANGELOG
from streams.kafka.admin import create_topics
from streams.kafka.producer import BatchProducer, DeliveryTracker
from streams.settings.model import load_settings

PARTITIONS = 8
BATCH = 5000
PARTS = {"apply_wave": "apply_wave", "wave": "wave (incl. apply_wave)", "produce": "produce", "put": "put"}


def timed(seconds: dict[str, float], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            seconds[name] = seconds.get(name, 0.0) + time.process_time() - started

    return wrapper


def instrument(seconds: dict[str, float]) -> None:
    module: Any = manager  # the name ``apply_wave`` the manager calls, replaced by a timed one
    module.apply_wave = timed(seconds, "apply_wave", module.apply_wave)
    batch_state: Any = manager._BatchState
    batch_state.wave = timed(seconds, "wave", batch_state.wave)
    stores: Any = manager.StateStores
    stores.produce = timed(seconds, "produce", stores.produce)
    store: Any = PartitionStore
    store.put = timed(seconds, "put", store.put)


def run(bootstrap: str, clients: int, runs: int, config: str) -> None:
    settings = load_settings(
        bootstrap_servers=bootstrap,
        topic_prefix=f"stage{int(time.time()) % 100000}.",
        partitions=PARTITIONS,
        processor_store_dir=tempfile.mkdtemp(prefix="kcollect-stage-store-"),
    )
    create_topics(settings)
    metrics = {metric: tuple(computes) for metric, computes in state_metrics(config).items()}
    producer = BatchProducer(settings)
    changelog = STATE_CHANGELOG.name(settings.topic_prefix)
    stores = manager.StateStores(
        settings, changelog, producer, StateSpec(metrics), manager.Bounds(10, 10**12)
    )
    stores.sync([(REQUESTS.name(settings.topic_prefix), p) for p in range(PARTITIONS)])
    names = [metric for sub in DEFAULT_METRICS.values() for metric in sub]
    ids = [f"client-{i:07d}" for i in range(clients)]
    partitions = [i % PARTITIONS for i in range(clients)]
    rng = random.Random(1)
    seconds: dict[str, float] = {}
    instrument(seconds)
    for r in range(runs):
        run_id = f"fleet-20260101T00{r:02d}00Z"
        seconds.clear()
        step = 0.0
        trackers: list[DeliveryTracker] = []
        for start in range(0, clients, BATCH):
            requests = [{"run_id": run_id, "client_id": c} for c in ids[start : start + BATCH]]
            columns: dict[str, list[float | None]] = {
                m: [rng.randrange(100000) / 100 for _ in requests] for m in names
            }
            started = time.process_time()
            tracker = stores.tracker()
            stores.apply(requests, partitions[start : start + BATCH], columns, tracker)
            step += time.process_time() - started
            trackers.append(tracker)
        for sent in trackers:
            if not producer.wait(sent, 60) or sent.failed:
                raise RuntimeError("changelog records not delivered")
        per_client = {label: seconds.get(name, 0.0) / clients * 1e6 for name, label in PARTS.items()}
        parts = ", ".join(f"{label} {us:.1f}" for label, us in per_client.items())
        print(f"run {r + 1}: whole step {step / clients * 1e6:.1f} µs CPU per client; {parts}", flush=True)
    stores.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--config", choices=("on", "counters"), default="on")
    parser.add_argument("--bootstrap", default=None, help="a broker of yours (default: a Tansu of its own)")
    args = parser.parse_args()
    if args.bootstrap:
        run(args.bootstrap, args.clients, args.runs, args.config)
        return
    from kcollect.localstack.persistent import start_broker
    from kcollect.localstack.process import stop_process

    broker = start_broker(Path(tempfile.mkdtemp(prefix="kcollect-stage-broker-")))
    try:
        run(f"127.0.0.1:{broker.port}", args.clients, args.runs, args.config)
    finally:
        stop_process(broker)


if __name__ == "__main__":
    main()
