"""Helpers for integration tests: an isolated pipeline (own topic prefix, groups and database) on the
session's broker and ClickHouse, with the services run as real `kcollect` processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clickhouse_driver import Client

from streams.settings import Settings, load_settings
from tests.stack_fixtures import database_url

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Pipeline:
    env: dict[str, str]
    workdir: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        return load_settings(
            **{
                k.removeprefix("KCOLLECT_").lower(): v
                for k, v in self.env.items()
                if k.startswith("KCOLLECT_") and k != "KCOLLECT_STATE_DIR"
            }
        )

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "kcollect", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
        )

    def start(self, name: str, *extra: str) -> subprocess.Popen[bytes]:
        ready = self.workdir / f"{name}.ready"
        ready.unlink(missing_ok=True)
        log = (self.workdir / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "kcollect", name, "--ready-file", str(ready), *extra],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        self.procs[name] = proc
        return proc

    def wait_ready(self, *names: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        for name in names:
            while not (self.workdir / f"{name}.ready").exists():
                proc = self.procs[name]
                assert proc.poll() is None, f"{name} exited with {proc.returncode}: {self.log(name)}"
                assert time.monotonic() < deadline, f"{name} not assigned in {timeout} s: {self.log(name)}"
                time.sleep(0.05)

    def stop(self, name: str, timeout: float = 30) -> int:
        proc = self.procs.pop(name)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout)

    def stop_all(self) -> None:
        for name in list(self.procs):
            proc = self.procs.pop(name)
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        address = self.settings.clickhouse()
        client = Client(
            host=address.host,
            port=address.port,
            user=address.user,
            password=address.password,
            database=address.database,
        )
        try:
            return list(client.execute(sql, params or {}))
        finally:
            client.disconnect()

    def wait_rows(self, run_id: str, expected: int, timeout: float = 120) -> int:
        deadline = time.monotonic() + timeout
        count = 0
        while time.monotonic() < deadline:
            count = int(
                self.query("SELECT count() FROM client_results FINAL WHERE run_id = %(r)s", {"r": run_id})[0][
                    0
                ]
            )
            if count >= expected:
                return count
            time.sleep(0.2)
        return count


def make_pipeline(
    kafka_bootstrap: str, clickhouse_url: str, name: str, workdir: Path, **extra: str
) -> Pipeline:
    env = dict(os.environ)
    env.update(
        {
            "KCOLLECT_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "KCOLLECT_CLICKHOUSE_URL": database_url(clickhouse_url, name),
            "KCOLLECT_TOPIC_PREFIX": f"{name}.",
            "KCOLLECT_PROCESSOR_GROUP": f"{name}-processor",
            "KCOLLECT_SINK_GROUP": f"{name}-sink",
            "KCOLLECT_PARTITIONS": "4",
            "KCOLLECT_SINK_BATCH_SECONDS": "0.5",
            "KCOLLECT_STATE_DIR": str(workdir / "state"),
            "PYTHONPATH": str(ROOT),
        }
    )
    env.update(extra)
    pipeline = Pipeline(env, workdir)
    for args in (("topics", "create"), ("db", "migrate")):
        done = pipeline.cli(*args)
        assert done.returncode == 0, done.stderr
    return pipeline
