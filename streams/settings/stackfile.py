"""Where the local stack records its state, and how any command reads it.

`kcollect stack up` writes ``stack.json`` into the state folder; settings read it so that, when
neither ``KCOLLECT_BOOTSTRAP_SERVERS`` nor ``KCOLLECT_CLICKHOUSE_URL`` is set, every command talks to
the local stack. This module only names the file and its shape; starting processes lives in
``kcollect.localstack.stack``.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from streams.settings.names import variable

STACK_FILE_NAME = "stack.json"


class ProcessRecord(BaseModel):
    """One process the local stack started."""

    model_config = ConfigDict(frozen=True)

    name: str
    pid: int
    port: int
    log_path: str


class StackFile(BaseModel):
    """The content of ``stack.json``."""

    model_config = ConfigDict(frozen=True)

    bootstrap_servers: str
    clickhouse_url: str
    processes: tuple[ProcessRecord, ...] = ()
    broker: str = "tansu"  # "kafka" or "tansu"; files written before Apache Kafka was the default say nothing
    broker_note: str | None = None  # why the broker is not the default one (e.g. no java on PATH)


def state_dir() -> Path:
    """The local stack's state folder: ``KCOLLECT_STATE_DIR`` or ``~/.local/state/kcollect``."""
    configured = os.environ.get(variable("state_dir"))
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "kcollect"


def pid_alive(pid: int) -> bool:
    """True when a process with this PID exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def read_stack_file(folder: Path | None = None) -> StackFile | None:
    """The recorded stack, or None when there is none or any of its processes has died."""
    path = (folder or state_dir()) / STACK_FILE_NAME
    try:
        stack = StackFile.model_validate_json(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not stack.processes or not all(pid_alive(p.pid) for p in stack.processes):
        return None
    return stack


def write_stack_file(stack: StackFile, folder: Path | None = None) -> Path:
    """Write ``stack.json`` atomically and return its path."""
    target = folder or state_dir()
    target.mkdir(parents=True, exist_ok=True)
    path = target / STACK_FILE_NAME
    tmp = path.with_suffix(".tmp")
    tmp.write_text(stack.model_dump_json(indent=2))
    tmp.replace(path)
    return path
