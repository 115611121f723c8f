"""bench/state: the whole pipeline with per-client state on vs off, in the same bench run.

``python -m bench.state [--clients 700000]``. One local stack of its own (Tansu on memory storage,
clickhouse-server), then two cases, each on its own topics, groups and database (8 partitions), one
processor and one sink, the built-in simulated subsystems (alpha 1 metric + beta 10):

- ``state off``: no ``state`` section;
- ``state on``: ``state.metrics`` = ``uptime: [delta, increase, rate]`` and ``load_0..load_9: [delta]``
  (every metric kept: 24 more computed values per client);
- ``state counters`` (``--cases`` ``counters``): ``uptime: [increase, rate]`` only, what a fleet whose
  counters get state and whose gauges are charted as they are would configure (3 more values).

Each case runs two scheduled runs of the same clients (``<name>-20260101T000000Z``, then one minute
later); the second is the steady state (every client has a history) and is the one compared. Seconds
run from the run's first request produced to the moment every client is stored. Then, for ``state on``,
the processor is stopped, its local store deleted and a new processor started: the restore of every
partition from the changelog is timed (its log line), and the changelog's records and bytes (all read
once) are reported, with what compaction keeps of it (the last record of each key; Tansu does not
compact). CPU seconds of run 2 are given per process (processor, sink, broker, ClickHouse: /proc).
The end of a run is seen by ``bench.e2e_kit.wait_stored``: the run's deliveries from ``run_summary`` (a few
aggregate rows per insert) every 0.05 s, the distinct clients counted only once that reaches the
fleet (a distinct count at every poll, ~36 ms of the server's CPU at 200,000 rows stored and growing
with the rows, was most of ClickHouse's CPU in this bench before).
``--rounds N`` runs the off/on pair N times, alternating, on the same stack.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import KafkaError, TopicPartition

from bench.deployment import Deployment, make_deployment
from bench.e2e_kit import wait_stored
from bench.machine import machine_line
from bench.procstat import proc_cpu_seconds
from processors.processor.subsystems.simulated import DEFAULT_METRICS
from producers.enqueue.enqueue import enqueue_run
from producers.enqueue.sources import RangeSource
from schemas.topics import STATE_CHANGELOG
from streams.kafka.clients import make_consumer

SLOTS = ("20260101T000000Z", "20260101T000100Z")


CASES = ("off", "on", "counters")


def state_metrics(case: str) -> dict[str, list[str]]:
    if case == "counters":
        return {"uptime": ["increase", "rate"]}
    metrics: dict[str, list[str]] = {"uptime": ["delta", "increase", "rate"]}
    metrics |= {f"load_{i}": ["delta"] for i in range(10)}
    return metrics


def state_config(workdir: Path, case: str = "on") -> Path:
    metrics = state_metrics(case)
    config = {
        "subsystems": [{"name": name, "metrics": list(m)} for name, m in DEFAULT_METRICS.items()],
        "state": {"metrics": metrics},
    }
    path = workdir / "processor-state.json"
    path.write_bytes(orjson.dumps(config))
    return path


def load_average() -> float:
    return round(float(Path("/proc/loadavg").read_text().split()[0]), 2)


def changelog_size(d: Deployment) -> tuple[int, int, int, int]:
    """(records, bytes of keys and values, keys, bytes of the last record of each key) of the state
    changelog, read once to its end: the last two are what a compacted changelog holds."""
    settings = d.settings
    topic = STATE_CHANGELOG.name(settings.topic_prefix)
    consumer = make_consumer(
        settings, f"bench-state-{uuid.uuid4().hex[:8]}", **{"enable.partition.eof": True}
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(settings.partitions)])
    records = size = 0
    last: dict[bytes, int] = {}
    at_end: set[int] = set()
    try:
        while len(at_end) < settings.partitions:
            for msg in consumer.consume(10000, 0.5):
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        at_end.add(int(msg.partition() or 0))
                    continue
                records += 1
                key, value = msg.key() or b"", msg.value()
                size += len(key) + len(value or b"")
                if value is None:
                    last.pop(key, None)
                else:
                    last[key] = len(key) + len(value)
    finally:
        consumer.close()
    return records, size, len(last), sum(last.values())


def timed_run(
    d: Deployment, run_id: str, clients: int, timeout: float, infra: dict[str, int]
) -> dict[str, Any]:
    pids = {"processor": d.procs["processor"].pid, "sink": d.procs["sink"].pid, **infra}
    cpu0 = {name: proc_cpu_seconds(pid) for name, pid in pids.items()}
    summary = enqueue_run(d.settings, run_id, RangeSource(0, clients - 1))
    seen = wait_stored(d, run_id, clients, timeout)
    cpu = {f"{name}_cpu_s": round(proc_cpu_seconds(pid) - cpu0[name], 2) for name, pid in pids.items()}
    seconds = (seen or time.time()) - summary.first_produced_at
    return {"seconds": round(seconds, 2), "complete": seen is not None, **cpu}


def run_case(
    bootstrap: str, clickhouse_url: str, case: str, clients: int, timeout: float, infra: dict[str, int]
) -> dict[str, Any]:
    stateful = case != "off"
    name = f"bst{case}{int(time.time()) % 100000}"
    workdir = Path(tempfile.mkdtemp(prefix=f"kcollect-{name}-"))
    store = workdir / "store"
    extra = {"KCOLLECT_PROCESSOR_STORE_DIR": str(store)}
    d = make_deployment(bootstrap, clickhouse_url, name, workdir, **extra)
    if stateful:
        d.env["KCOLLECT_PROCESSOR_CONFIG"] = str(state_config(workdir, case))
    row: dict[str, Any] = {"case": f"state {case}", "clients": clients, "load": load_average()}
    try:
        d.launch("processor", ["processor"])
        d.launch("sink", ["sink"])
        d.wait_ready("processor", "sink")
        for i, slot in enumerate(SLOTS, start=1):
            row[f"run{i}"] = timed_run(d, f"{name}-{slot}", clients, timeout, infra)
        if stateful:
            assert d.stop("processor") == 0
            row["store_mb"] = round(sum(p.stat().st_size for p in store.rglob("*") if p.is_file()) / 1e6, 1)
            shutil.rmtree(store)
            (workdir / "processor.log").rename(workdir / "processor-1.log")
            d.launch("processor", ["processor"])
            d.wait_ready("processor", timeout=600)
            found = re.findall(
                r"(\d+) partition\(s\) restored in ([\d.]+) s \((\d+) record", d.log("processor")
            )
            row["restore"] = {
                "partitions": int(found[0][0]),
                "seconds": float(found[0][1]),
                "records": int(found[0][2]),
            }
            records, size, keys, compacted = changelog_size(d)
            row["changelog"] = {
                "records": records,
                "mb": round(size / 1e6, 1),
                "compacted_records": keys,
                "compacted_mb": round(compacted / 1e6, 1),
            }
    finally:
        d.stop_all()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=700_000)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--rounds", type=int, default=1, help="rounds of the cases, alternating")
    parser.add_argument("--cases", default="off,on", help=f"comma-separated, of {','.join(CASES)}")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    cases = args.cases.split(",")
    if cases[0] != "off" or not set(cases) <= set(CASES):
        parser.error(f"--cases: off first, then any of {CASES}")

    from kcollect.localstack.clickhouse import clickhouse_url, start_clickhouse
    from kcollect.localstack.persistent import start_broker
    from kcollect.localstack.process import stop_process

    folder = Path(tempfile.mkdtemp(prefix="kcollect-state-stack-"))
    broker = start_broker(folder)
    ch = start_clickhouse(folder)
    bootstrap, ch_url = f"127.0.0.1:{broker.port}", clickhouse_url(ch.port)
    infra = {"broker": broker.pid, "clickhouse": ch.pid}
    rows: list[dict[str, Any]] = []
    try:
        for _ in range(args.rounds):
            for case in cases:
                rows.append(run_case(bootstrap, ch_url, case, args.clients, args.timeout, infra))
                if args.json is not None:
                    args.json.write_text(json.dumps(rows, indent=1))
    finally:
        stop_process(broker)
        stop_process(ch)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1))
    print(f"machine: {machine_line()}")
    print(json.dumps(rows, indent=1))
    for start in range(0, len(rows), len(cases)):
        off_run = rows[start]["run2"]
        for row in rows[start + 1 : start + len(cases)]:
            run = row["run2"]
            cpu_on, cpu_off = (sum(r[k] for k in r if k.endswith("_cpu_s")) for r in (run, off_run))
            print(
                f"round {start // len(cases) + 1}, steady-state run: {row['case']} / off = "
                f"{run['seconds'] / off_run['seconds']:.2f} wall, {cpu_on / cpu_off:.2f} CPU of all four "
                "(target <= 1.25)"
            )


if __name__ == "__main__":
    main()
