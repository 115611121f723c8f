"""An isolated kcollect deployment (own topic prefix, groups and database) on a broker and a ClickHouse,
with its services run as real ``kcollect`` processes: for bench/e2e, the drills and the integration
tests (``tests/integration/pipeline.py``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.crash_report import allow_cores, death_report, is_native_crash
from streams.clickhouse.client import connect
from streams.settings.model import Settings, load_settings
from streams.settings.names import variable

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Deployment:
    """One isolated kcollect deployment and the service processes started for it."""

    name: str
    env: dict[str, str]
    workdir: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        fields = {variable(name): name for name in Settings.model_fields}
        return load_settings(**{fields[k]: v for k, v in self.env.items() if k in fields})

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "kcollect", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
        )

    def launch(
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
            command,
            env=self.env | (env or {}),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        self.procs[name] = proc
        return proc

    def start(self, name: str, *extra: str) -> subprocess.Popen[bytes]:
        """Start ``kcollect NAME EXTRA...`` (a service: processor, sink, ...) under its own name."""
        return self.launch(name, [name, *extra])

    def wait_ready(self, *names: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        for name in names:
            while not (self.workdir / f"{name}.ready").exists():
                proc = self.procs[name]
                if proc.poll() is not None:
                    raise RuntimeError(f"not ready: {self.death_report(name)}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} not ready in {timeout} s: {self.log(name)[-2000:]}")
                time.sleep(0.05)

    def death_report(self, name: str) -> str:
        """How service ``name`` ended (the signal by name), its log's end and, after a native crash, the
        native stacks of its core file (bench/crash_report.py)."""
        proc = self.procs[name]
        return death_report(name, proc.poll(), proc.pid, self.log(name), sys.executable)

    def crashed(self) -> dict[str, str]:
        """The death report of every service still listed that died by a signal the harness never
        sends (SIGSEGV, SIGABRT, ...)."""
        return {name: self.death_report(name) for name, p in self.procs.items() if is_native_crash(p.poll())}

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

    def kill_all(self) -> None:
        """SIGKILL every service still running (a test's clean-up: no drain to wait for)."""
        for name in list(self.procs):
            proc = self.procs.pop(name)
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)

    def prepare(self) -> None:
        """Create the deployment's topics and tables (``kcollect topics create``, ``db migrate``)."""
        for args in (("topics", "create"), ("db", "migrate")):
            done = self.cli(*args)
            if done.returncode != 0:
                raise RuntimeError(f"kcollect {' '.join(args)} failed: {done.stderr[-2000:]}")

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


def deployment_env(
    bootstrap: str, clickhouse_url: str, name: str, workdir: Path, **extra: str
) -> dict[str, str]:
    """This process's environment with deployment ``name``'s addresses, prefix ``name.``, groups
    ``name-processor``/``name-sink``, database ``name`` and state folder, then ``extra``."""
    from tests.stack_fixtures import database_url

    env = dict(os.environ)
    env.pop("KCOLLECT_FAULT_AT", None)
    env.update(
        {
            "KCOLLECT_BOOTSTRAP_SERVERS": bootstrap,
            "KCOLLECT_CLICKHOUSE_URL": database_url(clickhouse_url, name),
            "KCOLLECT_TOPIC_PREFIX": f"{name}.",
            "KCOLLECT_PROCESSOR_GROUP": f"{name}-processor",
            "KCOLLECT_SINK_GROUP": f"{name}-sink",
            "KCOLLECT_STATE_DIR": str(workdir / "state"),
            "PYTHONPATH": str(ROOT),
        }
    )
    env.update(extra)
    return env


def make_deployment(
    bootstrap: str, clickhouse_url: str, name: str, workdir: Path, **extra: str
) -> Deployment:
    """A deployment (``deployment_env``; session timeout 3 s unless ``extra`` says otherwise) whose
    topics and tables are created."""
    workdir.mkdir(parents=True, exist_ok=True)
    allow_cores()  # the services inherit it: a native crash leaves a core where core_pattern says
    extra = {"KCOLLECT_SESSION_TIMEOUT_MS": "3000"} | extra
    deployment = Deployment(name, deployment_env(bootstrap, clickhouse_url, name, workdir, **extra), workdir)
    deployment.prepare()
    return deployment
