"""Parts of bench/e2e: an isolated deployment (own topic prefix, groups, database) on a broker and a
ClickHouse, services as real ``kcollect`` processes, and a sampler of stored rows, lag, CPU and RSS."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.clickhouse import connect
from streams.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (its threads included) from /proc/PID/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def proc_peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set) of ``pid`` in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@dataclass
class Deployment:
    """One isolated kcollect deployment and the service processes started for it."""

    name: str
    env: dict[str, str]
    workdir: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        values = {
            k.removeprefix("KCOLLECT_").lower(): v
            for k, v in self.env.items()
            if k.startswith("KCOLLECT_") and k not in ("KCOLLECT_STATE_DIR", "KCOLLECT_FAULT_AT")
        }
        return load_settings(**values)

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "kcollect", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
        )

    def start(
        self, name: str, argv: list[str], ready: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` (``kcollect`` args, or a full command) as service ``name``, with ``env`` added."""
        ready_file = self.workdir / f"{name}.ready"
        ready_file.unlink(missing_ok=True)
        command = [sys.executable, "-m", "kcollect", *argv] if argv[0] != sys.executable else argv
        if ready:
            command += ["--ready-file", str(ready_file)]
        log = (self.workdir / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            command, env=self.env | (env or {}), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
        )
        self.procs[name] = proc
        return proc

    def wait_ready(self, *names: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        for name in names:
            while not (self.workdir / f"{name}.ready").exists():
                proc = self.procs[name]
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}: {self.log(name)[-2000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} not ready in {timeout} s: {self.log(name)[-2000:]}")
                time.sleep(0.05)

    def stop(self, name: str, timeout: float = 30) -> int | None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait(10)

    def stop_all(self, timeout: float = 30) -> None:
        for name in list(self.procs):
            self.stop(name, timeout)

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        client = connect(self.settings.clickhouse())
        try:
            return list(client.execute(sql, params or {}))
        finally:
            client.disconnect()

    def stored(self, run_id: str, final: bool = False) -> int:
        table = "client_results FINAL" if final else "client_results"
        return int(self.query(f"SELECT count() FROM {table} WHERE run_id = %(r)s", {"r": run_id})[0][0])


def make_deployment(
    bootstrap: str, clickhouse_url: str, name: str, workdir: Path, **extra: str
) -> Deployment:
    """A deployment with prefix ``name.``, groups ``name-processor``/``name-sink`` and database ``name``;
    topics and tables are created."""
    from tests.stack_fixtures import database_url

    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.pop("KCOLLECT_FAULT_AT", None)
    env.update(
        {
            "KCOLLECT_BOOTSTRAP_SERVERS": bootstrap,
            "KCOLLECT_CLICKHOUSE_URL": database_url(clickhouse_url, name),
            "KCOLLECT_TOPIC_PREFIX": f"{name}.",
            "KCOLLECT_PROCESSOR_GROUP": f"{name}-processor",
            "KCOLLECT_SINK_GROUP": f"{name}-sink",
            "KCOLLECT_SESSION_TIMEOUT_MS": "3000",
            "KCOLLECT_STATE_DIR": str(workdir / "state"),
            "PYTHONPATH": str(ROOT),
        }
    )
    env.update(extra)
    deployment = Deployment(name, env, workdir)
    for args in (("topics", "create"), ("db", "migrate")):
        done = deployment.cli(*args)
        if done.returncode != 0:
            raise RuntimeError(f"kcollect {' '.join(args)} failed: {done.stderr[-2000:]}")
    return deployment


@dataclass
class Sample:
    t: float
    stored: int
    processor_lag: int | None
    sink_lag: int | None


class Sampler(threading.Thread):
    """Every ``interval`` s: raw rows stored for the run and both groups' lag; CPU and peak RSS of the
    services are read at ``snapshot``."""

    def __init__(self, deployment: Deployment, run_id: str, interval: float = 0.5) -> None:
        super().__init__(daemon=True, name="e2e-sampler")
        self.deployment, self.run_id, self.interval = deployment, run_id, interval
        self.samples: list[Sample] = []
        self.started_at = time.time()
        self._halt = threading.Event()

    def run(self) -> None:
        from streams.lag import LagProbe

        settings = self.deployment.settings
        prefix = settings.topic_prefix
        probes = {
            "processor": LagProbe(settings, settings.processor_group, f"{prefix}requests"),
            "sink": LagProbe(settings, settings.sink_group, f"{prefix}results"),
        }
        try:
            while not self._halt.is_set():
                lags: dict[str, int | None] = {}
                for name, probe in probes.items():
                    try:
                        lags[name] = probe.total()
                    except Exception:
                        lags[name] = None
                stored = self.deployment.stored(self.run_id)
                self.samples.append(Sample(time.time(), stored, lags["processor"], lags["sink"]))
                self._halt.wait(self.interval)
        finally:
            for probe in probes.values():
                probe.close()

    def stop(self) -> None:
        self._halt.set()
        self.join(10)


def wait_stored(deployment: Deployment, run_id: str, clients: int, timeout: float) -> float | None:
    """Poll every 0.05 s until ``clients`` rows of the run are stored (raw count, then FINAL); the epoch
    time they were seen, or None after ``timeout``."""
    deadline = time.monotonic() + timeout
    client = connect(deployment.settings.clickhouse())
    try:
        while time.monotonic() < deadline:
            count = client.execute(
                "SELECT uniqExact(client_id) FROM client_results WHERE run_id = %(r)s", {"r": run_id}
            )[0][0]
            if count >= clients:
                return time.time()
            time.sleep(0.05)
        return None
    finally:
        client.disconnect()
