"""bench/lag: lag collection and exporter scrape time for GROUPS groups x PARTITIONS partitions.

Each group consumes its own topic of PARTITIONS partitions with RECORDS records per partition
(produced in large batches, so Tansu's ListOffsets under-reports and the exact end offsets read the
last batch) and has committed half of every partition, so every partition is behind and its time lag
needs a record read. Measured, each REPEAT times (median and range):

- cold: a first ``LagCollector.collect()`` in a fresh collector (no cached timestamps);
- warm: the next collections (committed offsets unchanged: timestamps from the cache);
- moved: a collection after every group committed one more record on every partition;
- scrape: an HTTP GET of /metrics from ``LagExporter`` (served from the cache of the last collection).

Usage: python -m bench.lag [GROUPS [PARTITIONS [RECORDS [REPEAT]]]]   (defaults 10 64 200 5)
The broker is KCOLLECT_BOOTSTRAP_SERVERS, or a Tansu started for the run in a temporary folder.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

from bench.machine import machine_line
from kcollect.ops.exporter import LagExporter, serve
from streams.lag.collector import LagCollector
from streams.settings.model import Settings, load_settings
from tests.integration.lagkit import commit, make_topic, produce


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def summary(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"{statistics.median(ms):,.1f} ms ({min(ms):,.1f}-{max(ms):,.1f})"


def setup(bootstrap: str, prefix: str, groups: int, partitions: int, records: int) -> list[tuple[str, str]]:
    pairs = []
    for g in range(groups):
        topic, group = f"{prefix}topic{g}", f"{prefix}group{g}"
        make_topic(bootstrap, topic, partitions)
        produce(bootstrap, topic, dict.fromkeys(range(partitions), records), batched=True)
        commit(bootstrap, group, {(topic, p): records // 2 for p in range(partitions)})
        pairs.append((topic, group))
    return pairs


def measure(
    settings: Settings, pairs: list[tuple[str, str]], partitions: int, records: int, repeat: int
) -> dict[str, str]:
    cold, warm, moved, scrape = [], [], [], []
    for step in range(1, repeat + 1):
        collector = LagCollector(settings)
        cold.append(timed(collector.collect))
        rows = len(collector.collect().rows)
        assert rows == len(pairs) * partitions, rows
        warm += [timed(collector.collect) for _ in range(3)]
        for topic, group in pairs:
            moved_to = {(topic, p): records // 2 + step for p in range(partitions)}
            commit(settings.kafka_bootstrap(), group, moved_to)
        moved.append(timed(collector.collect))
        collector.close()
    exporter = LagExporter(settings, interval=3600, runs=False)
    exporter.refresh()
    server = serve(exporter, 0, "127.0.0.1")
    url = f"http://127.0.0.1:{server.server_port}/metrics"
    size = 0
    for _ in range(repeat * 4):
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=10) as answer:
            size = len(answer.read())
        scrape.append(time.perf_counter() - started)
    server.shutdown()
    exporter.close()
    return {
        "cold collection": summary(cold),
        "warm collection": summary(warm),
        "collection after commits moved": summary(moved),
        f"exporter scrape ({size / 1024:,.0f} KiB)": summary(scrape),
    }


def main() -> None:
    args = [int(a) for a in sys.argv[1:]]
    groups, partitions, records, repeat = (args + [10, 64, 200, 5][len(args) :])[:4]
    prefix = f"benchlag{uuid.uuid4().hex[:6]}."
    bootstrap = os.environ.get("KCOLLECT_BOOTSTRAP_SERVERS")
    record = None
    with tempfile.TemporaryDirectory() as folder:
        if bootstrap is None:
            from kcollect.localstack.stack import start_tansu

            record = start_tansu(Path(folder))
            bootstrap = f"127.0.0.1:{record.port}"
        try:
            started = time.monotonic()
            pairs = setup(bootstrap, prefix, groups, partitions, records)
            print(f"set-up: {groups} topics x {partitions} partitions x {records} records, {groups} groups, "
                  f"{time.monotonic() - started:.1f} s", file=sys.stderr)  # fmt: skip
            settings = load_settings(bootstrap_servers=bootstrap, topic_prefix=prefix)
            results = measure(settings, pairs, partitions, records, repeat)
        finally:
            if record is not None:
                from kcollect.localstack.stack import stop_process

                stop_process(record)
    print(machine_line())
    print(f"{groups} groups x {partitions} partitions ({groups * partitions} partitions behind), "
          f"repeat {repeat}")  # fmt: skip
    print("| measurement | median (range) |\n|---|---|")
    for name, value in results.items():
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
