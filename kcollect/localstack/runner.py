"""`kcollect run`: one whole collection run on the configured (or local) stack, with a summary.

Brings the local stack up when no addresses are configured, creates topics and tables, starts a
processor and a sink as separate processes, waits until both are in their groups, enqueues the run,
waits until the run is complete by its run status (stored + dead-lettered clients = the manifest's
total; ``streams.runs.status``), stops the services and reports. Seconds are measured from the first
request produced to the moment the run was seen complete.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kcollect.localstack.process import exit_text, log_tail
from producers.enqueue.enqueue import enqueue_run
from producers.enqueue.sources import RangeSource
from schemas.ddl import RESULTS_TABLE
from streams.clickhouse.client import connect, migrate
from streams.kafka.admin import create_topics
from streams.runs.status import wait_complete
from streams.settings.model import Settings, load_settings
from streams.settings.names import variable

READY_TIMEOUT = 120.0


class RunIncompleteError(RuntimeError):
    """The run did not store every client in time."""


@dataclass
class RunSummary:
    run_id: str
    clients: int
    stored: int
    seconds: float
    complete: bool
    stages: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_run_id() -> str:
    return time.strftime("run-%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid() % 10000:04d}"


def ensure_stack(settings: Settings) -> Settings:
    """Settings whose addresses point at a running stack (starting the local one when none is configured)."""
    if settings.bootstrap_servers is None and settings.clickhouse_url is None:
        from kcollect.localstack import stack

        stack.up()
        return load_settings()
    return settings


def service_env(settings: Settings) -> dict[str, str]:
    """The environment for child services: the parent's, with the resolved addresses made explicit."""
    env = dict(os.environ)
    env[variable("bootstrap_servers")] = settings.kafka_bootstrap()
    address = settings.clickhouse()
    env[variable("clickhouse_url")] = address.url_with_credentials()
    if address.cluster:
        env[variable("clickhouse_cluster")] = address.cluster
    return env


def start_service(name: str, settings: Settings, workdir: Path) -> subprocess.Popen[bytes]:
    log_file = (workdir / f"{name}.log").open("wb")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kcollect",
            name,
            "--ready-file",
            str(workdir / f"{name}.ready"),
            "--stats-file",
            str(workdir / f"{name}.stats.json"),
        ],
        env=service_env(settings),
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )


def wait_ready(names: list[str], procs: list[subprocess.Popen[bytes]], workdir: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while not all((workdir / f"{n}.ready").exists() for n in names):
        for name, proc in zip(names, procs, strict=True):
            if proc.poll() is not None:
                log = workdir / f"{name}.log"
                raise RunIncompleteError(
                    f"the {name} exited early ({exit_text(proc.returncode)}); see {log}: {log_tail(log)}"
                )
        if time.monotonic() > deadline:
            raise RunIncompleteError(f"services not assigned partitions within {READY_TIMEOUT:.0f} s")
        time.sleep(0.05)


def stored_count(settings: Settings, run_id: str, final: bool) -> int:
    address = settings.clickhouse()
    client = connect(address)
    try:
        table = f"{address.database}.{RESULTS_TABLE}" + (" FINAL" if final else "")
        return int(
            client.execute(f"SELECT count() FROM {table} WHERE run_id = %(run)s", {"run": run_id})[0][0]
        )
    finally:
        client.disconnect()


def wait_stored(settings: Settings, run_id: str, clients: int, timeout: float) -> tuple[int, float, bool]:
    """Wait until the run is complete by its run status (the manifest's total; ``clients`` when the
    run has no manifest); returns (clients stored under FINAL, epoch time seen, complete)."""
    progress = wait_complete(settings, run_id, timeout, interval=0.1, fallback_total=clients)
    seen = time.time()
    return stored_count(settings, run_id, final=True), seen, progress.complete


def stop_services(procs: list[subprocess.Popen[bytes]], timeout: float) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _stage_rates(workdir: Path, clients: int, first_at: float) -> dict[str, dict[str, float]]:
    stages: dict[str, dict[str, float]] = {}
    for name in ("processor", "sink"):
        path = workdir / f"{name}.stats.json"
        if path.exists():
            stats = json.loads(path.read_text())
            span = max(stats.get("last_batch_at", first_at) - first_at, 1e-6)
            stages[name] = {
                "records": stats.get("consumed", 0),
                "clients_per_s": round(clients / span, 1),
                "peak_rss_mb": stats.get("peak_rss_mb", 0.0),
            }
    return stages


def run_collection(settings: Settings, clients: RangeSource, run_id: str, timeout: float) -> RunSummary:
    settings = ensure_stack(settings)
    create_topics(settings)
    migrate(settings.clickhouse())
    with tempfile.TemporaryDirectory(prefix="kcollect-run-") as tmp:
        workdir = Path(tmp)
        names = ["processor", "sink"]
        procs = [start_service(name, settings, workdir) for name in names]
        try:
            wait_ready(names, procs, workdir)
            summary = enqueue_run(settings, run_id, clients)
            stored, seen_at, complete = wait_stored(settings, run_id, clients.total, timeout)
        finally:
            stop_services(procs, settings.shutdown_deadline_seconds + 5)
        seconds = seen_at - summary.first_produced_at
        stages = {
            "enqueue": {
                "records": summary.enqueued,
                "clients_per_s": round(summary.enqueued / max(summary.seconds, 1e-6), 1),
            }
        }
        stages.update(_stage_rates(workdir, clients.total, summary.first_produced_at))
    return RunSummary(run_id, clients.total, stored, round(seconds, 3), complete, stages)
