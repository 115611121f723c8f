"""Start detached processes and stop them again by PID, never touching a process that is not ours.

Every process the stack starts carries ``KCOLLECT_STACK_PROCESS=<name>:<port>`` in its environment.
Before any signal, ``/proc/PID/cmdline`` must still name the program and ``/proc/PID/environ`` must
still carry that marker, so a PID the kernel has since reused for something else is left alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NoReturn

from kcollect.localstack.errors import StackError
from kcollect.localstack.ports import deadline_after, remaining
from streams.settings.names import variable
from streams.settings.stackfile import ProcessRecord, pid_alive

MARKER_VARIABLE = variable("stack_process")
STOP_TIMEOUT = 10.0
KILL_TIMEOUT = 5.0

# Popen objects of the processes started by this interpreter: kept so they are reaped, not GC-warned.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def marker(name: str, port: int) -> str:
    """The value of ``KCOLLECT_STACK_PROCESS`` for one process."""
    return f"{name}:{port}"


def spawn_detached(
    argv: Sequence[str], log_path: Path, env: Mapping[str, str], cwd: Path | None = None
) -> int:
    """Start ``argv`` in its own session, output to ``log_path`` (truncated); return its PID."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
                cwd=cwd,
                env=dict(env),
            )
        except OSError as exc:
            raise StackError(f"cannot start {argv[0]}: {exc}") from exc
    _CHILDREN[proc.pid] = proc
    return proc.pid


def _proc_bytes(pid: int, entry: str) -> bytes | None:
    try:
        return Path(f"/proc/{pid}/{entry}").read_bytes()
    except OSError:
        return None


def is_recorded_process(record: ProcessRecord) -> bool:
    """True when ``record.pid`` is alive and still is the process the stack started."""
    if not pid_alive(record.pid):
        return False
    cmdline = _proc_bytes(record.pid, "cmdline")
    environ = _proc_bytes(record.pid, "environ")
    if cmdline is None or environ is None:
        return False
    wanted = f"{MARKER_VARIABLE}={marker(record.name, record.port)}".encode()
    return record.name.encode() in cmdline and wanted in environ.split(b"\0")


def _reap(pid: int) -> None:
    """Collect the exit status of our own child so it does not linger as a zombie."""
    proc = _CHILDREN.get(pid)
    if proc is not None:
        if proc.poll() is not None:
            del _CHILDREN[pid]
        return
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def exited(pid: int) -> bool:
    """True once ``pid`` has exited (reaping it when it is our child)."""
    _reap(pid)
    return not pid_alive(pid)


def wait_exit(pid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``pid`` to exit; True when it did."""
    deadline = deadline_after(timeout)
    while not exited(pid):
        if remaining(deadline) <= 0:
            return False
        time.sleep(0.05)
    return True


def _signal(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def stop_process(record: ProcessRecord, timeout: float = STOP_TIMEOUT) -> bool:
    """SIGTERM, wait up to ``timeout`` s, then SIGKILL; True when a live process was stopped.

    A PID that is gone or now belongs to another program is not signalled (returns False).
    Raises StackError when the process survives SIGKILL.
    """
    if not is_recorded_process(record):
        _reap(record.pid)
        return False
    _signal(record.pid, signal.SIGTERM)
    if wait_exit(record.pid, timeout):
        return True
    if is_recorded_process(record):
        _signal(record.pid, signal.SIGKILL)
    if not wait_exit(record.pid, KILL_TIMEOUT):
        raise StackError(f"{record.name} (pid {record.pid}) survived SIGKILL; see {record.log_path}")
    return True


def stop_processes(records: Sequence[ProcessRecord], timeout: float = STOP_TIMEOUT) -> list[str]:
    """SIGTERM to every live recorded process at once, wait up to ``timeout`` s, SIGKILL the rest.

    For members of one cluster: stopped one by one, the last ones could wait on a quorum that is
    already gone. Returns the names of the processes that were running and are now stopped.
    """
    live = [r for r in records if is_recorded_process(r)]
    for record in records:
        if record not in live:
            _reap(record.pid)
    for record in live:
        _signal(record.pid, signal.SIGTERM)
    deadline = deadline_after(timeout)
    for record in live:
        wait_exit(record.pid, remaining(deadline))
    for record in live:
        if not exited(record.pid) and is_recorded_process(record):
            _signal(record.pid, signal.SIGKILL)
    stuck = [r for r in live if not wait_exit(r.pid, KILL_TIMEOUT)]
    if stuck:
        names = ", ".join(f"{r.name} (pid {r.pid})" for r in stuck)
        raise StackError(f"{names} survived SIGKILL; see {stuck[0].log_path}")
    return [r.name for r in live]


def exit_text(code: int | None) -> str:
    """``-11`` -> ``"killed by SIGSEGV (-11)"``; ``97`` -> ``"exit code 97"``; None -> ``"running"``."""
    if code is None:
        return "running"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name} ({code})"
    return f"exit code {code}"


def log_tail(path: Path, lines: int = 5) -> str:
    """The last few lines of a log file, joined with `` | `` (empty when unreadable)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])


def wait_ready(
    record: ProcessRecord, check: Callable[[float], bool], timeout: float, extra_logs: Sequence[Path] = ()
) -> None:
    """Poll ``check(seconds_left)`` until it is true; fail fast if the process exits, else on timeout.

    On any failure (or interrupt) the process is stopped; StackError names the log file(s) and quotes
    their end.
    """
    try:
        _poll_ready(record, check, timeout, extra_logs)
    except BaseException:
        stop_process(record)
        raise


def _poll_ready(
    record: ProcessRecord, check: Callable[[float], bool], timeout: float, extra_logs: Sequence[Path]
) -> None:
    deadline = deadline_after(timeout)
    while True:
        if exited(record.pid):
            _fail(record, f"{record.name} exited during startup", extra_logs)
        if check(remaining(deadline)) and not exited(record.pid):
            return
        if remaining(deadline) <= 0:
            _fail(record, f"{record.name} did not answer within {timeout:g} s", extra_logs)
        time.sleep(0.05)


def _fail(record: ProcessRecord, what: str, extra_logs: Sequence[Path]) -> NoReturn:
    logs = [Path(record.log_path), *extra_logs]
    tails = "; ".join(f"{p}: {tail}" for p in logs if (tail := log_tail(p)))
    names = ", ".join(str(p) for p in logs)
    raise StackError(f"{what} (port {record.port}); see {names}" + (f" — {tails}" if tails else ""))
