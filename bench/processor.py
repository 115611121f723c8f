"""bench/processor: N clients through one `kcollect processor`, in-process and over HTTP.

1. in-process: the built-in simulated subsystems (alpha 1 metric + beta 10), no latency. N requests
   are produced to a fresh requests topic (own prefix, 8 partitions); one processor process runs; the
   clock runs from its first assignment to the moment its group's committed offsets cover all N
   (every result delivered). RSS of the processor is sampled every 0.5 s.
2. http: the same through `kcollect simulate --latency-ms L` (alpha and beta as HTTP subsystems,
   batch 500, 8 concurrent calls each): clients/s, calls/s and p99 call latency (from the
   processor's Prometheus histogram).
3. faust (optional, ``--faust``): a faust-streaming agent doing the same decode/fetch/compute/produce.

Uses the configured stack or the local one. Usage:
python -m bench.processor [N] [--http N2] [--latency-ms L] [--profile FILE] [--faust N3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from bench.machine import machine_line
from bench.procstat import PhaseMeter, proc_status_mb
from kcollect.localstack.runner import ensure_stack, service_env
from schemas.codec import request_encoder
from schemas.topics import ALL_TOPICS
from streams.kafka.admin import create_topics
from streams.kafka.clients import make_admin
from streams.kafka.producer import BatchProducer
from streams.settings.model import Settings, load_settings

PARTITIONS = 8
ROOT = Path(__file__).resolve().parents[1]


def fresh(base: Settings, tag: str) -> Settings:
    prefix = f"bench-{tag}-{uuid.uuid4().hex[:6]}."
    settings = base.model_copy(
        update={"topic_prefix": prefix, "partitions": PARTITIONS, "processor_group": f"{prefix}processor"}
    )
    create_topics(settings, ALL_TOPICS)
    return settings


def enqueue(settings: Settings, n: int, **producer_extra: Any) -> float:
    producer = BatchProducer(settings, **producer_extra)
    encode = request_encoder("bench", int(time.time() * 1000))
    topic = f"{settings.topic_prefix}requests"
    started = time.monotonic()
    for start in range(0, n, 10000):
        ids = [str(i) for i in range(start, min(n, start + 10000))]
        producer.produce_batch(topic, [(c, encode(c)) for c in ids])
    assert producer.flush(120) == 0
    return time.monotonic() - started


def committed(settings: Settings, admin: AdminClient) -> int:
    topic = f"{settings.topic_prefix}requests"
    request = ConsumerGroupTopicPartitions(
        settings.processor_group, [TopicPartition(topic, p) for p in range(PARTITIONS)]
    )
    try:
        result = admin.list_consumer_group_offsets([request])[settings.processor_group].result(10)
    except Exception:
        return 0
    return sum(max(0, tp.offset) for tp in result.topic_partitions)


def run_processor(
    settings: Settings,
    n: int,
    workdir: Path,
    extra_env: dict[str, str],
    profile: str | None,
    infra: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """Run one processor until its group has committed all ``n``; with CPU seconds and peak RSS of the
    processor and of ``infra`` (name -> pid, e.g. the broker) from the first assignment to the end."""
    ready = workdir / "processor.ready"
    env = (
        service_env(settings)
        | {
            "KCOLLECT_TOPIC_PREFIX": settings.topic_prefix,
            "KCOLLECT_PROCESSOR_GROUP": settings.processor_group,
            "PYTHONPATH": str(ROOT),
        }
        | extra_env
    )
    cmd = [sys.executable, *(["-m", "cProfile", "-o", profile] if profile else []), "-m", "kcollect"]
    cmd += [
        "--log-level",
        "WARNING",
        "processor",
        "--ready-file",
        str(ready),
        "--stats-file",
        str(workdir / "stats.json"),
    ]
    log = (workdir / "processor.log").open("wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    admin = make_admin(settings)
    rss: list[float] = []
    try:
        while not ready.exists():
            assert proc.poll() is None, (workdir / "processor.log").read_text()
            time.sleep(0.02)
        started = time.monotonic()
        meter = PhaseMeter({"processor": proc.pid} | dict(infra or {})).start()
        last_sample = 0.0
        while (done := committed(settings, admin)) < n:
            assert proc.poll() is None, (workdir / "processor.log").read_text()[-3000:]
            assert time.monotonic() - started < 900, f"only {done} of {n} committed"
            if time.monotonic() - last_sample >= 0.5:
                rss.append(proc_status_mb(proc.pid, "VmRSS"))
                last_sample = time.monotonic()
            time.sleep(0.05)
        seconds = time.monotonic() - started
        usage = meter.stop()
        scraped = scrape(extra_env.get("KCOLLECT_HTTP_PORT"))
    finally:
        proc.terminate()
        proc.wait(60)
    stats = json.loads((workdir / "stats.json").read_text())
    return {
        "clients": n,
        "seconds": round(seconds, 2),
        "clients_per_s": round(n / seconds),
        "rss_series_mb": [round(r) for r in rss],
        "rss_mb_first_last_max": [
            round(rss[0]) if rss else 0,
            round(rss[-1]) if rss else 0,
            round(max(rss or [0])),
        ],
        "cpu_s": {name: u.cpu_s for name, u in usage.items()},
        "peak_rss_mb": {name: u.peak_rss_mb for name, u in usage.items()},
        "chain_clients_per_s": round(n / max(1e-6, stats["last_batch_at"] - stats["first_batch_at"])),
        "paused_seconds": round(stats.get("paused_seconds", 0), 2),
        "results": stats.get("results"),
        "metrics": scraped,
    }


def scrape(port: str | None) -> str:
    if not port:
        return ""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def histogram_p99(text: str, name: str, q: float = 0.99) -> tuple[int, float]:
    """Calls and the ``q`` quantile's upper bucket bound of a Prometheus histogram (summed labels)."""
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith(f"{name}_bucket{{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            bound = float("inf") if le == "+Inf" else float(le)
            buckets[bound] = buckets.get(bound, 0.0) + float(line.rsplit(" ", 1)[1])
    total = buckets.get(float("inf"), 0.0)
    p99 = next((b for b in sorted(buckets) if buckets[b] >= q * total), float("inf"))
    return int(total), p99


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bench_inprocess(
    base: Settings, n: int, profile: str | None, infra: Mapping[str, int] | None = None
) -> dict[str, Any]:
    settings = fresh(base, "proc")
    enqueue_s = enqueue(settings, n)
    with tempfile.TemporaryDirectory() as tmp:
        out = run_processor(settings, n, Path(tmp), {}, profile, infra)
    out.pop("metrics")
    return {"mode": "in-process simulated, no latency", "enqueue_s": round(enqueue_s, 2)} | out


def bench_http(
    base: Settings, n: int, latency_ms: float, infra: Mapping[str, int] | None = None
) -> dict[str, Any]:
    settings = fresh(base, "http")
    enqueue(settings, n)
    sim_port, metrics_port = free_port(), free_port()
    env = service_env(settings) | {"PYTHONPATH": str(ROOT)}
    sim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kcollect",
            "simulate",
            "--port",
            str(sim_port),
            "--latency-ms",
            str(latency_ms),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{sim_port}/fetch"
    common = {"kind": "http", "url": url, "batch_size": 500, "max_concurrency": 8}
    config = {
        "subsystems": [
            {"name": "alpha", "metrics": ["uptime"], **common},
            {"name": "beta", "metrics": [f"load_{i}" for i in range(10)], **common},
        ]
    }
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "config.json"
            path.write_bytes(orjson.dumps(config))
            out = run_processor(
                settings,
                n,
                Path(tmp),
                {
                    "KCOLLECT_PROCESSOR_CONFIG": str(path),
                    "KCOLLECT_HTTP_PORT": str(metrics_port),
                    "KCOLLECT_MAX_IN_FLIGHT_BATCHES": "8",
                },
                None,
                infra,
            )
    finally:
        sim.terminate()
        sim.wait(10)
    text = out.pop("metrics")
    calls, p99 = histogram_p99(text, "kcollect_processor_fetch_seconds")
    p50 = histogram_p99(text, "kcollect_processor_fetch_seconds", 0.5)[1]
    return {
        "mode": f"kcollect simulate, {latency_ms:g} ms per call",
        **out,
        "calls": calls,
        "calls_per_s": round(calls / out["seconds"]),
        "p50_call_ms_bucket": p50 * 1000,
        "p99_call_ms_bucket": p99 * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", nargs="?", type=int, default=700_000)
    parser.add_argument("--http", type=int, default=200_000, help="clients for the HTTP run (0: skip)")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--profile", default=None)
    parser.add_argument("--faust", type=int, default=0, help="clients for the faust run (0: skip)")
    args = parser.parse_args()
    base = ensure_stack(load_settings())
    print(machine_line())
    if args.n:
        print(json.dumps(bench_inprocess(base, args.n, args.profile)))
    if args.http:
        print(json.dumps(bench_http(base, args.http, args.latency_ms)))
    if args.faust:
        from bench.processor_faust import bench_faust

        print(json.dumps(bench_faust(fresh(base, "faust"), args.faust, enqueue)))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
