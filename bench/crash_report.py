"""What a test harness can say about a service process that died: its exit (the signal by name), the
end of its log and, after a native crash, every thread's native stack from its core file.

A native crash in a librdkafka thread leaves no Python trace: librdkafka blocks every signal in the
threads it starts, and the kernel kills a thread that faults with its SIGSEGV blocked without running
any handler, so ``faulthandler`` cannot print anything (docs/reliability.md, "Processor crash at
start-up (SIGSEGV)"). The core file is then the only witness. ``allow_cores`` lets the services a harness
starts dump one where the machine's ``core_pattern`` is an absolute path (a folder an operator chose,
e.g. ``echo '/tmp/cores/core.%e.%p' > /proc/sys/kernel/core_pattern``), never into the working tree;
``native_backtrace`` reads it with gdb when gdb is installed.
"""

from __future__ import annotations

import contextlib
import resource
import shutil
import signal
import subprocess
from pathlib import Path

from kcollect.localstack.process import exit_text

CORE_PATTERN = Path("/proc/sys/kernel/core_pattern")
GDB_TIMEOUT = 120.0
__all__ = ["allow_cores", "core_folder", "death_report", "exit_text", "find_core", "is_native_crash"]
SIGNALS_WE_SEND = frozenset({-signal.SIGKILL, -signal.SIGTERM, -signal.SIGINT})


def is_native_crash(code: int | None) -> bool:
    """A death by a signal the harness does not send itself (SIGSEGV, SIGABRT, SIGBUS, ...)."""
    return code is not None and code < 0 and code not in SIGNALS_WE_SEND


def core_folder(pattern_file: Path = CORE_PATTERN) -> Path | None:
    """The folder cores are written to when ``core_pattern`` is an absolute path, else None (a pipe to a
    crash handler, or a relative name that would land in the process's working folder)."""
    try:
        pattern = pattern_file.read_text().strip()
    except OSError:
        return None
    if not pattern.startswith("/"):
        return None
    return Path(pattern).parent


def allow_cores(pattern_file: Path = CORE_PATTERN) -> bool:
    """Raise this process's core size limit to its hard limit (the services it starts inherit it) when
    cores go to a folder of their own (``core_folder``); never when they would land in the working
    tree. True when cores are on."""
    if core_folder(pattern_file) is None:
        return False
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_CORE)[0] != 0


def find_core(pid: int, folder: Path | None) -> Path | None:
    """The core file of process ``pid`` in ``folder`` (a name ending in ``.PID``, as ``%p`` makes it)."""
    if folder is None or not folder.is_dir():
        return None
    matches = sorted(folder.glob(f"*.{pid}"), key=lambda p: p.stat().st_mtime)
    return matches[-1] if matches else None


def native_backtrace(executable: str, core: Path, max_lines: int = 400) -> str:
    """Every thread's native stack from ``core`` (gdb ``thread apply all bt``), or why there is none."""
    gdb = shutil.which("gdb")
    if gdb is None:
        return f"core {core}: read it with gdb -batch -ex 'thread apply all bt' {executable} {core}"
    python_dir = str(Path(executable).resolve().parent)  # its python*-gdb.py gives py-bt
    command = [gdb, "-batch", "-nx", "-iex", f"add-auto-load-safe-path {python_dir}"]
    command += ["-ex", "info threads", "-ex", "thread apply all bt 40", "-ex", "thread apply all py-bt"]
    command += [executable, str(core)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=GDB_TIMEOUT)
    except subprocess.TimeoutExpired:
        return f"core {core}: gdb took over {GDB_TIMEOUT:g} s"
    lines = [line for line in done.stdout.splitlines() if not line.startswith(("[New LWP", "warning:"))]
    return f"core {core}:\n" + "\n".join(lines[:max_lines])


def death_report(
    name: str, code: int | None, pid: int, log: str, executable: str, tail_chars: int = 3000
) -> str:
    """``name``'s exit, the end of its log and, after a native crash, the native stacks from its core."""
    parts = [f"{name} (pid {pid}) {exit_text(code)}"]
    if is_native_crash(code):
        core = find_core(pid, core_folder())
        if core is not None:
            parts.append(native_backtrace(executable, core))
        else:
            parts.append(
                "no core file: a crash in a librdkafka thread leaves no Python trace (faulthandler "
                "cannot run there); set /proc/sys/kernel/core_pattern to a folder (e.g. "
                "/tmp/cores/core.%e.%p) to get one"
            )
    parts.append(f"last log lines of {name}:\n{log[-tail_chars:]}")
    return "\n".join(parts)
