"""Helpers for the processor's integration tests (no tests here): the HTTP simulator as a process,
processor config files, extra processor processes, and reading a topic or the Prometheus endpoint."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, Producer

from schemas.codec import request_encoder
from schemas.result_batch import expand_batch, is_batch
from tests.integration.pipeline import ROOT, Pipeline


def start_simulator(pipe: Pipeline, settings: dict[str, Any] | None = None) -> str:
    """Start `kcollect simulate` on a free port; returns its base URL."""
    ready = pipe.workdir / "simulate.ready"
    ready.unlink(missing_ok=True)
    args = ["--port", "0", "--settings", orjson.dumps(settings or {}).decode()]
    pipe.start("simulate", *args)
    deadline = time.monotonic() + 20
    while not ready.exists() or not ready.read_text().strip():
        assert time.monotonic() < deadline, pipe.log("simulate")
        time.sleep(0.05)
    return f"http://127.0.0.1:{ready.read_text().strip()}"


def control(base: str, change: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(f"{base}/control", data=orjson.dumps(change), method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        return dict(orjson.loads(response.read()))


def sim_stats(base: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{base}/stats", timeout=5) as response:
        return dict(orjson.loads(response.read()))


def http_config(pipe: Pipeline, base: str, **policy: Any) -> Path:
    """A processor config: alpha (1 metric) and beta (10) over HTTP at ``base``."""
    retry = policy.pop("retry", {"max_attempts": 3, "delay_ms": 300, "max_delay_ms": 2000})
    common = {"kind": "http", "url": f"{base}/fetch", "batch_size": 100, "max_concurrency": 8} | policy
    config = {
        "subsystems": [
            {"name": "alpha", "metrics": ["uptime"], **common},
            {"name": "beta", "metrics": [f"load_{i}" for i in range(10)], **common},
        ],
        "compute": "summary",
        "retry": retry,
    }
    path = pipe.workdir / "processor.json"
    path.write_bytes(orjson.dumps(config))
    return path


def start_processor(pipe: Pipeline, name: str, **env: str) -> subprocess.Popen[bytes]:
    """A processor process under its own name (several can run in one pipeline)."""
    ready = pipe.workdir / f"{name}.ready"
    ready.unlink(missing_ok=True)
    log = (pipe.workdir / f"{name}.log").open("ab")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kcollect",
            "processor",
            "--ready-file",
            str(ready),
            "--stats-file",
            str(pipe.workdir / f"{name}.stats.json"),
        ],
        env=pipe.env | env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    pipe.procs[name] = proc
    return proc


def enqueue(pipe: Pipeline, run_id: str, clients: range, **fields: Any) -> None:
    """Produce requests directly (optionally with extra fields such as ``deadline_ms``)."""
    settings = pipe.settings
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap(), "linger.ms": 20})
    topic = f"{settings.topic_prefix}requests"
    encode = request_encoder(run_id, 1_700_000_000_000)
    for i in clients:
        value = encode(str(i))
        if fields:
            value = orjson.dumps(orjson.loads(value) | fields)
        producer.produce(topic, value, str(i))
        if i % 10000 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0


def client_results(records: list[Any]) -> list[dict[str, Any]]:
    """The ClientResult dicts in results-topic records (result batches expanded, in order)."""
    out: list[dict[str, Any]] = []
    for msg in records:
        obj = orjson.loads(msg.value())
        out.extend(expand_batch(obj) if is_batch(obj) else [obj])
    return out


def read_results(pipe: Pipeline, at_least: int, timeout: float = 60) -> list[dict[str, Any]]:
    """The results on the results topic, read until there are ``at_least`` (or idle 1.5 s)."""
    return client_results(
        read_topic(pipe, "results", lambda got: len(client_results(got)) >= at_least, timeout)
    )


def read_topic(pipe: Pipeline, suffix: str, until: Any = None, timeout: float = 60) -> list[Any]:
    """Every record of a topic, reading until ``until(records)`` is true (or idle 1.5 s)."""
    settings = pipe.settings
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap(),
            "group.id": f"check-{time.time_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "fetch.queue.backoff.ms": 20,
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([f"{settings.topic_prefix}{suffix}"])
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    idle_since = time.monotonic()
    try:
        while time.monotonic() < deadline:
            batch = [m for m in consumer.consume(1000, 0.3) if m.error() is None]
            got.extend(batch)
            if batch:
                idle_since = time.monotonic()
            if until is not None and until(got):
                break
            if until is None and got and time.monotonic() - idle_since > 1.5:
                break
    finally:
        consumer.close()
    return got


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def metric_value(text: str, name: str, **labels: str) -> float:
    """A sample's value from Prometheus text (0 when absent); labels match in any order."""
    for line in text.splitlines():
        head, _, value = line.rpartition(" ")
        metric, _, rest = head.partition("{")
        if metric != name:
            continue
        found = dict(part.split("=", 1) for part in rest.rstrip("}").split(",") if "=" in part)
        if {k: v.strip('"') for k, v in found.items()} == labels:
            return float(value)
    return 0.0


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
