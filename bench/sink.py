"""bench/sink: 700k results through Kafka into ClickHouse by `kcollect sink`, beside a bare insert.

1. Builds N realistic results (the processor's own fetch, compute and result batches on the simulated
   subsystems: one batch per partition's share of a 5,000-request consume) and produces them to a
   fresh results topic (own topic prefix, 8 partitions).
2. Bare: clickhouse-driver columnar inserts of the same N rows (columns built beforehand) into a table
   with the same schema (materialized view included), each in its own database: all N in one insert,
   and in inserts of 100k rows (the sink's window); the faster one is the reference.
3. Sink: starts K `kcollect sink` processes in one group (own group and database per K; K = 1, then 2)
   and measures from the first assignment to the moment ClickHouse holds N rows (also reported from
   process start).

Before each measured case the bench waits until ClickHouse runs no merge: the parts an earlier case
wrote are merged in the background and would share the two cores with the next case.

Uses the configured stack, or the local one (started when none is). Usage:
python -m bench.sink [N [K ...]] [--profile FILE] (--profile: the first sink under cProfile).
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from pathlib import Path

from bench.machine import machine_line
from kcollect.localstack.runner import ensure_stack, service_env
from processors.processor.collect import EncodedBatch, encode_results
from processors.processor.compute import get_compute
from processors.processor.subsystems.simulated import default_subsystems
from schemas.codec import request_record
from schemas.ddl import insert_results_sql
from schemas.topics import ALL_TOPICS
from streams.clickhouse.client import connect, migrate
from streams.kafka.admin import create_topics
from streams.kafka.clients import make_admin
from streams.kafka.producer import BatchProducer
from streams.settings.model import Settings, load_settings
from tests.oracles import build_results, fetch_all, to_columns

PARTITIONS = 8


CONSUMED = 5000  # the processor's default consume batch: one result batch per partition's share


def build_rows(n: int, run_id: str) -> tuple[list[dict[str, object]], list[EncodedBatch]]:
    """The results as dicts (for the bare insert) and as the processor's result batches."""
    requested_at = int(time.time() * 1000)
    requests = [request_record(run_id, str(i), requested_at) for i in range(n)]
    columns = fetch_all(default_subsystems(), requests, 500)
    compute = get_compute("summary")
    batches: list[EncodedBatch] = []
    for start in range(0, n, CONSUMED):
        part = requests[start : start + CONSUMED]
        # a consumed batch holds every partition's share, one partition after another
        partitions = sorted(zlib.crc32(str(r["client_id"]).encode()) % PARTITIONS for r in part)
        chunk = {name: column[start : start + CONSUMED] for name, column in columns.items()}
        batches.extend(encode_results(part, partitions, chunk, compute, requested_at + 1000)[0])
    return build_results(requests, columns, compute, requested_at + 1000), batches


def produce(settings: Settings, batches: list[EncodedBatch]) -> float:
    producer = BatchProducer(settings)
    topic = f"{settings.topic_prefix}results"
    started = time.monotonic()
    producer.produce_to_partitions(topic, [(b.partition, b.value) for b in batches])
    assert producer.flush(60) == 0
    return time.monotonic() - started


def bare_insert(settings: Settings, rows: list[dict[str, object]], chunk: int) -> float:
    """Seconds for columnar inserts of ``rows``, ``chunk`` rows per insert (columns built beforehand)."""
    address = settings.clickhouse()
    migrate(address)
    columns = to_columns(rows)
    gc.collect()
    gc.freeze()  # the rows and columns are long-lived: no collection walks them during the insert
    client = connect(address)
    sql = insert_results_sql(address.database)
    try:
        started = time.monotonic()
        for start in range(0, len(rows), chunk):
            client.execute(sql, [column[start : start + chunk] for column in columns], columnar=True)
        return time.monotonic() - started
    finally:
        client.disconnect()
        gc.unfreeze()


def wait_for_quiet_server(settings: Settings, timeout: float = 60.0) -> float:
    """Wait until ClickHouse runs no merge (those of an earlier case would share the CPU with the next
    case); returns the seconds waited."""
    client = connect(settings.clickhouse(), database="default")
    started = time.monotonic()
    try:
        while time.monotonic() - started < timeout:
            if int(client.execute("SELECT count() FROM system.merges")[0][0]) == 0:
                break
            time.sleep(0.2)
        return time.monotonic() - started
    finally:
        client.disconnect()


def count_rows(settings: Settings) -> int:
    client = connect(settings.clickhouse())
    try:
        return int(client.execute("SELECT count() FROM client_results")[0][0])
    finally:
        client.disconnect()


def run_sinks(
    settings: Settings, n: int, workdir: Path, count: int, profile: str | None
) -> tuple[float, float, list[dict[str, object]]]:
    """Run ``count`` sink processes in one group; seconds from the first assignment and from start."""
    env = service_env(settings) | {
        "KCOLLECT_TOPIC_PREFIX": settings.topic_prefix,
        "KCOLLECT_SINK_GROUP": settings.sink_group,
        "KCOLLECT_SESSION_TIMEOUT_MS": "1000",
    }
    procs: list[subprocess.Popen[bytes]] = []
    started = time.monotonic()
    for i in range(count):
        command = [sys.executable, "-m", "kcollect", "--log-level", "WARNING", "sink"]
        command += ["--ready-file", str(workdir / f"sink{i}.ready")]
        command += ["--stats-file", str(workdir / f"sink{i}.stats.json")]
        if profile and i == 0:
            command[1:1] = ["-m", "cProfile", "-o", profile]
        log = (workdir / f"sink{i}.log").open("wb")
        procs.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))

    def check() -> None:
        for i, proc in enumerate(procs):
            assert proc.poll() is None, (workdir / f"sink{i}.log").read_text()

    try:
        while not any((workdir / f"sink{i}.ready").exists() for i in range(count)):
            check()
            time.sleep(0.01)
        assigned = time.monotonic()
        while count_rows(settings) < n:
            check()
            time.sleep(0.05)
        done = time.monotonic()
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(60)
    stats = []
    for i in range(count):
        path = workdir / f"sink{i}.stats.json"
        if path.exists():
            stats.append(json.loads(path.read_text()))
    return done - assigned, done - started, stats


def fresh_database(settings: Settings, name: str) -> Settings:
    url = settings.clickhouse().url().rsplit("/", 1)[0]
    moved = settings.model_copy(update={"clickhouse_url": f"{url}/{name}", "sink_group": f"{name}-sink"})
    migrate(moved.clickhouse())
    return moved


def main() -> None:
    args = sys.argv[1:]
    profile = None
    if "--profile" in args:
        profile = args[args.index("--profile") + 1]
        del args[args.index("--profile") : args.index("--profile") + 2]
    n = int(args[0]) if args else 700_000
    sink_counts = [int(a) for a in args[1:]] or [1, 2]
    base = ensure_stack(load_settings())
    tag = f"bsink{uuid.uuid4().hex[:6]}"
    topics = load_settings(
        bootstrap_servers=base.kafka_bootstrap(),
        clickhouse_url=f"{base.clickhouse().url().rsplit('/', 1)[0]}/{tag}_bare",
        topic_prefix=f"{tag}.",
        partitions=PARTITIONS,
    )
    create_topics(topics)
    rows, batches = build_rows(n, f"{tag}-run")
    produce_seconds = produce(topics, batches)
    del batches
    wait_for_quiet_server(topics)
    one_block = bare_insert(topics, rows, n)
    wait_for_quiet_server(topics)
    chunked = bare_insert(fresh_database(topics, f"{tag}_bare100k"), rows, 100_000)
    del rows
    bare_seconds = min(one_block, chunked)
    bare_rate = n / bare_seconds
    print(f"machine: {machine_line()}")
    print(f"rows: {n:,} in result batches ({PARTITIONS} partitions), produced in {produce_seconds:.2f} s")
    print(f"bare columnar insert, one block: {one_block:.2f} s = {n / one_block:,.0f} rows/s")
    print(f"bare columnar inserts of 100k rows: {chunked:.2f} s = {n / chunked:,.0f} rows/s")
    print(f"bare (the faster): {bare_rate:,.0f} rows/s")
    databases = [f"{tag}_bare", f"{tag}_bare100k"]
    for count in sink_counts:
        settings = fresh_database(topics, f"{tag}_s{count}")
        wait_for_quiet_server(settings)
        databases.append(f"{tag}_s{count}")
        with tempfile.TemporaryDirectory(prefix="bench-sink-") as tmp:
            from_assigned, from_start, stats = run_sinks(settings, n, Path(tmp), count, profile)
        rate = n / from_assigned
        print(
            f"{count} sink process(es): {from_assigned:.2f} s from first assignment = {rate:,.0f} rows/s "
            f"({from_start:.2f} s from process start = {n / from_start:,.0f} rows/s); "
            f">= 300k rows/s {'met' if rate >= 300_000 else 'NOT met'}, "
            f">= half bare {'met' if rate >= bare_rate / 2 else 'NOT met'} ({rate / bare_rate:.0%} of bare)"
        )
        for one in stats:
            keys = ("inserts", "windows", "batches", "paused_seconds", "decode_seconds", "insert_seconds")
            print("  stats: " + ", ".join(f"{k} {one.get(k)}" for k in keys))
    client = connect(topics.clickhouse(), database="default")
    try:
        for database in databases:
            client.execute(f"DROP DATABASE IF EXISTS {database}")
    finally:
        client.disconnect()
    if os.environ.get("BENCH_KEEP_TOPICS") is None:
        make_admin(topics).delete_topics([spec.name(f"{tag}.") for spec in ALL_TOPICS])


if __name__ == "__main__":
    main()
