"""bench/sink: 700k results through Kafka into ClickHouse by `kcollect sink`, beside a bare insert.

1. Builds N realistic results (the processor's own fetch, compute and result batches on the simulated
   subsystems: one batch per partition's share of a 5,000-request consume) and produces them to a
   fresh results topic (own topic prefix, 8 partitions).
2. Bare: clickhouse-driver columnar inserts of the same N rows (the columns the sink's decoder makes of
   the same result batches, built beforehand) into a table with the same schema (materialized views
   included), each in its own database: all N in one insert, and in inserts of ~100k rows (the sink's
   insert; cut at a record's first row); the faster one is the reference. Then the same rows in
   inserts of ~100k into the layout
   before typed results (metrics and computed as JSON text, ``LEGACY_DDL``), for ClickHouse's CPU per
   stored row before and after the schema change.
3. Sink: starts K `kcollect sink` processes in one group (own group and database per K; K = 1, then 2)
   and measures from the first assignment to the moment ClickHouse holds N rows (also reported from
   process start).

ClickHouse's CPU (its process's, from /proc, when the local stack runs it) is reported per stored row
during each case and with the merges that follow it. Before each measured case the bench waits until
ClickHouse runs no merge: the parts an earlier case
wrote are merged in the background and would share the two cores with the next case.

Uses the configured stack, or the local one (started when none is). Usage:
python -m bench.sink [N [K ...]] [--profile FILE] (--profile: the first sink under cProfile).
"""

from __future__ import annotations

import gc
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from bench.machine import machine_line
from bench.procstat import PhaseMeter, Usage, proc_cpu_seconds
from kcollect.localstack.runner import ensure_stack, service_env
from processors.processor.collect import EncodedBatch, encode_results
from processors.processor.compute import get_compute
from processors.processor.subsystems.simulated import default_subsystems
from processors.sink.columns import COLUMN_NAMES, ResultColumns
from processors.sink.result_rows import decode_rows
from schemas.codec import request_record
from schemas.ddl import OPTIONAL_RESULT_COLUMNS, insert_results_sql
from schemas.topics import ALL_TOPICS
from streams.clickhouse.client import connect, migrate
from streams.clickhouse.driver_columns import expand_float_rows
from streams.kafka.admin import create_topics
from streams.kafka.clients import make_admin
from streams.kafka.producer import BatchProducer
from streams.settings.model import Settings, load_settings
from tests.oracles import fetch_all

PARTITIONS = 8


CONSUMED = 5000  # the processor's default consume batch: one result batch per partition's share


def build_rows(n: int, run_id: str) -> list[EncodedBatch]:
    """The results as the processor's result batches."""
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
    return batches


def sink_columns(batches: list[EncodedBatch]) -> tuple[ResultColumns, list[int]]:
    """The columns the sink's decoder makes of ``batches`` (what the sink inserts), without the columns
    the sink leaves to the server when every row holds their default; and each row's position in its
    record (to expand the value columns' ``FloatRows``)."""
    decoded = decode_rows([b.value for b in batches])
    assert not decoded.bad
    columns = [
        c
        for name, c in zip(COLUMN_NAMES, decoded.columns, strict=True)
        if name not in OPTIONAL_RESULT_COLUMNS
    ]
    return columns, decoded.positions


# The layout before typed results (metrics and computed as JSON text), for the CPU comparison.
LEGACY_DDL = """CREATE TABLE {db}.client_results (
    run_id String, client_id String, requested_at DateTime('UTC'), collected_at DateTime('UTC'),
    attempt UInt16, status String, metrics String, missing Array(String), computed String, version UInt64
) ENGINE = ReplacingMergeTree(version) PARTITION BY toYYYYMM(requested_at) ORDER BY (run_id, client_id)"""
LEGACY_MV = """CREATE MATERIALIZED VIEW {db}.run_summary_mv TO {db}.run_summary AS SELECT run_id, {states}
FROM {db}.client_results GROUP BY run_id"""
LEGACY_COLUMNS = "run_id, client_id, requested_at, collected_at, attempt, status, metrics, computed, version"


def legacy_columns(columns: ResultColumns, positions: list[int]) -> list[list[object]]:
    """The same rows in the JSON-text layout (``LEGACY_COLUMNS``): each map as orjson text, as the sink
    used to write it."""
    by_name = dict(zip([n for n in COLUMN_NAMES if n not in OPTIONAL_RESULT_COLUMNS], columns, strict=True))
    dumps = orjson.dumps

    def texts(names: list[list[str]], values: list[Any]) -> list[bytes]:
        rows = expand_float_rows(values, positions)
        return [dumps(dict(zip(k, v, strict=True))) for k, v in zip(names, rows, strict=True)]

    return [
        *(by_name[n] for n in ("run_id", "client_id", "requested_at", "collected_at", "attempt", "status")),
        texts(by_name["metric_names"], by_name["metric_values"]),
        texts(by_name["computed_names"], by_name["computed_values"]),
        by_name["version"],
    ]


def legacy_database(settings: Settings, name: str) -> Settings:
    """A database holding the JSON-text layout with its run summary."""
    from schemas.ddl import RUN_SUMMARY_COLUMNS, database_ddl

    url = settings.clickhouse().url().rsplit("/", 1)[0]
    moved = settings.model_copy(update={"clickhouse_url": f"{url}/{name}"})
    client = connect(moved.clickhouse(), database="default")
    states = ", ".join(f"{expr} AS {col}" for col, _, expr, _ in RUN_SUMMARY_COLUMNS)
    try:
        client.execute(f"CREATE DATABASE IF NOT EXISTS {name}")
        client.execute(LEGACY_DDL.format(db=name))
        summary_table = next(
            s for s in database_ddl(name) if "TABLE IF NOT EXISTS" in s and ".run_summary (" in s
        )
        client.execute(summary_table)
        client.execute(LEGACY_MV.format(db=name, states=states))
    finally:
        client.disconnect()
    return moved


def stack_pid(name: str = "clickhouse") -> int | None:
    """The local stack's process ``name`` (clickhouse, kafka; None when the stack is configured
    elsewhere)."""
    from kcollect.localstack import stack

    for process in stack.status()["processes"]:
        if process.get("name") == name and process.get("alive"):
            return int(process["pid"])
    return None


def server_cpu(pid: int | None) -> float:
    return proc_cpu_seconds(pid) if pid is not None else 0.0


def produce(settings: Settings, batches: list[EncodedBatch]) -> float:
    producer = BatchProducer(settings)
    topic = f"{settings.topic_prefix}results"
    started = time.monotonic()
    producer.produce_to_partitions(topic, [(b.partition, b.value) for b in batches])
    assert producer.flush(60) == 0
    return time.monotonic() - started


def record_cuts(positions: list[int], chunk: int) -> list[int]:
    """Row indices at which inserts of about ``chunk`` rows start and end, each at a record's first row
    (a record's rows share its ``FloatRows``, which stands for all of them)."""
    cuts = [0]
    for index, position in enumerate(positions):
        if position == 0 and index - cuts[-1] >= chunk:
            cuts.append(index)
    return [*cuts, len(positions)]


def bare_insert(
    settings: Settings, columns: list[list[object]], cuts: list[int], sql: str | None = None
) -> float:
    """Seconds for columnar inserts of ``columns``, rows ``cuts[i]`` to ``cuts[i + 1]`` per insert (built
    beforehand)."""
    address = settings.clickhouse()
    if sql is None:
        migrate(address)
        sql = insert_results_sql(address.database, OPTIONAL_RESULT_COLUMNS)
    gc.collect()
    gc.freeze()  # the rows and columns are long-lived: no collection walks them during the insert
    client = connect(address)
    try:
        started = time.monotonic()
        for start, end in itertools.pairwise(cuts):
            client.execute(sql, [column[start:end] for column in columns], columnar=True)
        return time.monotonic() - started
    finally:
        client.disconnect()
        gc.unfreeze()


def with_server_cpu(settings: Settings, n: int, run: Any, server: int | None) -> tuple[Any, float, float]:
    """``run()``'s result and the CPU µs per row of ClickHouse (process ``server``) during it and with
    the merges after it."""
    before = server_cpu(server)
    result = run()
    during = server_cpu(server)
    wait_for_quiet_server(settings)
    after = server_cpu(server)
    return result, (during - before) * 1e6 / n, (after - before) * 1e6 / n


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


def run_sinks(
    settings: Settings,
    n: int,
    workdir: Path,
    count: int,
    profile: str | None,
    infra: Mapping[str, int] | None = None,
) -> tuple[float, float, list[dict[str, object]], dict[str, Usage]]:
    """Run ``count`` sink processes in one group; seconds from the first assignment and from start, their
    stats, and the CPU and peak RSS of the sinks and of ``infra`` (name -> pid) from the first
    assignment to the end."""
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
        meter = PhaseMeter({f"sink{i}": proc.pid for i, proc in enumerate(procs)} | dict(infra or {}))
        meter.start()
        counter = connect(settings.clickhouse())  # one connection: a new one per poll costs the server too
        try:
            while int(counter.execute("SELECT count() FROM client_results")[0][0]) < n:
                check()
                time.sleep(0.05)
        finally:
            counter.disconnect()
        done = time.monotonic()
        usage = meter.stop()
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
    return done - assigned, done - started, stats, usage


def fresh_database(settings: Settings, name: str) -> Settings:
    url = settings.clickhouse().url().rsplit("/", 1)[0]
    moved = settings.model_copy(update={"clickhouse_url": f"{url}/{name}", "sink_group": f"{name}-sink"})
    migrate(moved.clickhouse())
    return moved


def measure(
    base: Settings,
    n: int,
    sink_counts: list[int],
    profile: str | None = None,
    *,
    server: int | None = None,
    infra: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The whole bench on the stack of ``base``: ``server`` is ClickHouse's pid (for its CPU per row),
    ``infra`` more processes (name -> pid, e.g. the broker) metered while the results are produced and
    while the sinks run."""
    tag = f"bsink{uuid.uuid4().hex[:6]}"
    topics = load_settings(
        bootstrap_servers=base.kafka_bootstrap(),
        clickhouse_url=f"{base.clickhouse().url().rsplit('/', 1)[0]}/{tag}_bare",
        topic_prefix=f"{tag}.",
        partitions=PARTITIONS,
    )
    create_topics(topics)
    batches = build_rows(n, f"{tag}-run")
    columns, positions = sink_columns(batches)
    old_columns = legacy_columns(columns, positions)
    produce_meter = PhaseMeter(dict(infra or {})).start()
    produce_seconds = produce(topics, batches)
    produce_usage = produce_meter.stop()
    del batches
    wait_for_quiet_server(topics)
    bare: dict[str, dict[str, float]] = {}
    insert_one = partial(bare_insert, topics, columns, [0, n])
    one_block, cpu1, cpu1m = with_server_cpu(topics, n, insert_one, server)
    bare["one block"] = {"seconds": one_block, "cpu_us": cpu1, "cpu_us_merges": cpu1m}
    wait_for_quiet_server(topics)
    chunked_settings = fresh_database(topics, f"{tag}_bare100k")
    cuts = record_cuts(positions, 100_000)
    insert_chunked = partial(bare_insert, chunked_settings, columns, cuts)
    chunked, cpu2, cpu2m = with_server_cpu(topics, n, insert_chunked, server)
    bare["100k"] = {"seconds": chunked, "cpu_us": cpu2, "cpu_us_merges": cpu2m}
    legacy = legacy_database(topics, f"{tag}_legacy")
    legacy_sql = f"INSERT INTO {tag}_legacy.client_results ({LEGACY_COLUMNS}) VALUES"
    insert_old = partial(bare_insert, legacy, old_columns, cuts, legacy_sql)
    old, cpu3, cpu3m = with_server_cpu(topics, n, insert_old, server)
    bare["100k JSON text"] = {"seconds": old, "cpu_us": cpu3, "cpu_us_merges": cpu3m}
    del columns, old_columns
    bare_rate = n / min(one_block, chunked)
    databases = [f"{tag}_bare", f"{tag}_bare100k", f"{tag}_legacy"]
    sinks: list[dict[str, Any]] = []
    for count in sink_counts:
        settings = fresh_database(topics, f"{tag}_s{count}")
        wait_for_quiet_server(settings)
        databases.append(f"{tag}_s{count}")
        with tempfile.TemporaryDirectory(prefix="bench-sink-") as tmp:
            run = partial(run_sinks, settings, n, Path(tmp), count, profile, infra)
            (from_assigned, from_start, stats, usage), cpu_s, cpu_sm = with_server_cpu(
                settings, n, run, server
            )
        sinks.append(
            {
                "sinks": count,
                "seconds": round(from_assigned, 2),
                "seconds_from_start": round(from_start, 2),
                "rows_per_s": round(n / from_assigned),
                "of_bare": round(n / from_assigned / bare_rate, 3),
                "cpu_us": cpu_s,
                "cpu_us_merges": cpu_sm,
                "cpu_s": {name: u.cpu_s for name, u in usage.items()},
                "peak_rss_mb": {name: u.peak_rss_mb for name, u in usage.items()},
                "stats": stats,
            }
        )
    client = connect(topics.clickhouse(), database="default")
    try:
        for database in databases:
            client.execute(f"DROP DATABASE IF EXISTS {database}")
    finally:
        client.disconnect()
    if os.environ.get("BENCH_KEEP_TOPICS") is None:
        make_admin(topics).delete_topics([spec.name(f"{tag}.") for spec in ALL_TOPICS])
    return {
        "rows": n,
        "produce_seconds": round(produce_seconds, 2),
        "produce_cpu_s": {name: u.cpu_s for name, u in produce_usage.items()},
        "produce_peak_rss_mb": {name: u.peak_rss_mb for name, u in produce_usage.items()},
        "bare": bare,
        "bare_rows_per_s": round(bare_rate),
        "sinks": sinks,
    }


def report(result: dict[str, Any]) -> list[str]:
    """The lines ``main`` prints for one ``measure`` result."""
    n, bare = result["rows"], result["bare"]
    cpu = "ClickHouse CPU µs per row: {:.2f} during the inserts, {:.2f} with the merges after"
    produced = f"produced in {result['produce_seconds']:.2f} s"
    lines = [f"rows: {n:,} in result batches ({PARTITIONS} partitions), {produced}"]
    titles = {
        "one block": "bare columnar insert, one block",
        "100k": "bare columnar inserts of 100k rows",
        "100k JSON text": "bare inserts of 100k rows, JSON-text layout (before typed results)",
    }
    for key, title in titles.items():
        case = bare[key]
        lines.append(
            f"{title}: {case['seconds']:.2f} s = {n / case['seconds']:,.0f} rows/s; "
            + cpu.format(case["cpu_us"], case["cpu_us_merges"])
        )
    lines.append(f"bare (the faster): {result['bare_rows_per_s']:,.0f} rows/s")
    for case in result["sinks"]:
        rate = case["rows_per_s"]
        lines.append(
            f"{case['sinks']} sink process(es): {case['seconds']:.2f} s from first assignment = {rate:,.0f} "
            f"rows/s ({case['seconds_from_start']:.2f} s from process start = "
            f"{n / case['seconds_from_start']:,.0f} rows/s); "
            f">= 300k rows/s {'met' if rate >= 300_000 else 'NOT met'}, "
            f">= 0.6 of bare {'met' if case['of_bare'] >= 0.6 else 'NOT met'} "
            f"({case['of_bare']:.0%} of bare); " + cpu.format(case["cpu_us"], case["cpu_us_merges"])
        )
        cpu_s = ", ".join(f"{name} {seconds:.2f}" for name, seconds in case["cpu_s"].items())
        lines.append(f"  CPU s from first assignment to the last row stored: {cpu_s}")
        for one in case["stats"]:
            keys = ("inserts", "windows", "batches", "paused_seconds", "decode_seconds", "insert_seconds")
            lines.append("  stats: " + ", ".join(f"{k} {one.get(k)}" for k in keys))
    return lines


def main() -> None:
    args = sys.argv[1:]
    profile = None
    if "--profile" in args:
        profile = args[args.index("--profile") + 1]
        del args[args.index("--profile") : args.index("--profile") + 2]
    n = int(args[0]) if args else 700_000
    sink_counts = [int(a) for a in args[1:]] or [1, 2]
    base = ensure_stack(load_settings())
    broker = stack_pid("kafka")
    infra = {"broker": broker} if broker is not None else {}
    result = measure(base, n, sink_counts, profile, server=stack_pid("clickhouse"), infra=infra)
    print(f"machine: {machine_line()}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("\n".join(report(result)))


if __name__ == "__main__":
    main()
