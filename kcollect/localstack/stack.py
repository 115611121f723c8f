"""The embedded local stack: ``up``, ``down`` and ``status`` of a local broker plus a clickhouse-server.

The broker is Apache Kafka (one KRaft node from its Maven jars) where ``java`` and ``mvn`` exist, else
Tansu; ``KCOLLECT_LOCAL_BROKER=kafka|tansu`` chooses (``kcollect.localstack.brokers``).

Both run as detached local processes on free loopback ports, so they outlive the command that started
them; ``stack.json`` in the state folder (``streams.settings.stackfile``) records their PIDs, ports and logs,
and every other command finds the stack through it. The parts live in ``kcollect.localstack``; the
lower-level helpers are re-exported here for tests and drills.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kcollect.localstack.brokers import choose_broker, start_local_broker
from kcollect.localstack.clickhouse import clickhouse_url, start_clickhouse, wait_clickhouse
from kcollect.localstack.errors import StackError
from kcollect.localstack.kafka import start_kafka
from kcollect.localstack.ports import free_port
from kcollect.localstack.process import is_recorded_process, stop_process
from kcollect.localstack.tansu import find_tansu, start_tansu, wait_kafka
from streams.settings.model import parse_clickhouse_url
from streams.settings.stackfile import (
    STACK_FILE_NAME,
    ProcessRecord,
    StackFile,
    read_stack_file,
    state_dir,
    write_stack_file,
)

__all__ = [
    "ProcessRecord",
    "StackError",
    "StackFile",
    "choose_broker",
    "down",
    "find_tansu",
    "free_port",
    "parse_clickhouse_url",
    "start_clickhouse",
    "start_kafka",
    "start_local_broker",
    "start_tansu",
    "status",
    "stop_process",
    "up",
    "wait_clickhouse",
    "wait_kafka",
]

STARTUP_TIMEOUT = 60.0


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Serialise up/down on one state folder across processes."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "stack.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _recorded(folder: Path) -> StackFile | None:
    """``stack.json`` as written, whether or not its processes still run."""
    try:
        return StackFile.model_validate_json((folder / STACK_FILE_NAME).read_bytes())
    except (OSError, ValueError):
        return None


def _all_ours(stack: StackFile) -> bool:
    return bool(stack.processes) and all(is_recorded_process(p) for p in stack.processes)


def _stop_recorded(folder: Path) -> list[str]:
    """Stop the recorded processes still running (newest first), then remove ``stack.json``."""
    stack = _recorded(folder)
    if stack is None:
        (folder / STACK_FILE_NAME).unlink(missing_ok=True)
        return []
    stopped = [p.name for p in reversed(stack.processes) if stop_process(p)]
    (folder / STACK_FILE_NAME).unlink(missing_ok=True)
    return stopped


def _start(folder: Path, timeout: float) -> StackFile:
    """Start the broker, then ClickHouse; stop whatever started when anything fails."""
    choice = choose_broker()
    started: list[ProcessRecord] = []
    try:
        broker = start_local_broker(choice.kind, folder, timeout=timeout)
        started.extend(broker.records)
        clickhouse = start_clickhouse(folder, timeout=timeout)
        started.append(clickhouse)
    except BaseException:
        for record in reversed(started):
            stop_process(record)
        raise
    stack = StackFile(
        bootstrap_servers=broker.bootstrap_servers,
        clickhouse_url=clickhouse_url(clickhouse.port),
        processes=tuple(started),
        broker=broker.kind,
        broker_note=choice.note,
    )
    write_stack_file(stack, folder)
    return stack


def _check_answers(stack: StackFile, timeout: float) -> StackFile:
    wait_kafka(stack.bootstrap_servers, timeout)
    wait_clickhouse(stack.clickhouse_url, timeout)
    return stack


ANSWER_TIMEOUT = 5.0  # seconds a recorded, running stack gets to answer before it is restarted


def up(folder: Path | None = None, *, timeout: float = STARTUP_TIMEOUT) -> StackFile:
    """Start the local stack (or return the one already running) and record it in ``stack.json``.

    A stale record (a process died, or its PID now belongs to another program) is cleaned first:
    its processes still running are stopped. Raises StackError naming the log file on failure.
    """
    folder = folder or state_dir()
    with _locked(folder):
        running = read_stack_file(folder)
        if running is not None and _all_ours(running):
            try:  # a running stack answers at once; one that does not (a process dying) is restarted
                return _check_answers(running, min(timeout, ANSWER_TIMEOUT))
            except StackError:
                pass
        _stop_recorded(folder)
        return _start(folder, timeout)


def down(folder: Path | None = None) -> list[str]:
    """Stop the recorded processes (SIGTERM, then SIGKILL after ~10 s) and remove ``stack.json``.

    Only PIDs recorded in ``stack.json`` that still are our broker/clickhouse are signalled. Returns
    the names of the processes that were running and are now stopped.
    """
    folder = folder or state_dir()
    with _locked(folder):
        return _stop_recorded(folder)


def _process_info(record: ProcessRecord) -> dict[str, Any]:
    return {**record.model_dump(), "alive": is_recorded_process(record)}


def status(folder: Path | None = None) -> dict[str, Any]:
    """What ``stack.json`` records and whether it runs.

    Keys: ``running`` (every recorded process alive), ``broker`` (``kafka`` or ``tansu``; None when
    nothing is recorded), ``broker_note`` (why the broker is not the default one, or None),
    ``bootstrap_servers`` and ``clickhouse_url`` (None unless running), ``state_dir``, ``stack_file``
    and ``processes`` (each with ``alive``).
    """
    folder = folder or state_dir()
    stack = _recorded(folder)
    processes = [_process_info(p) for p in stack.processes] if stack else []
    running = bool(processes) and all(p["alive"] for p in processes)
    return {
        "running": running,
        "broker": stack.broker if stack else None,
        "broker_note": stack.broker_note if stack else None,
        "bootstrap_servers": stack.bootstrap_servers if stack and running else None,
        "clickhouse_url": stack.clickhouse_url if stack and running else None,
        "state_dir": str(folder),
        "stack_file": str(folder / STACK_FILE_NAME),
        "processes": processes,
    }
