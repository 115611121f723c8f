"""A process's CPU seconds and resident memory from /proc, and a meter of both over one measured phase.

``/proc/PID/stat`` gives user + system CPU ticks (the process's threads included); ``/proc/PID/status``
gives ``VmRSS`` (resident now) and ``VmHWM`` (peak resident). ``PhaseMeter`` reads the CPU of several
processes at the start and at the end of a phase and their peak RSS during it: the kernel's peak is
reset at the start (writing ``5`` to ``/proc/PID/clear_refs``) and read at the end; where the reset is
refused (or the process is gone by then), the peak is the largest ``VmRSS`` a sampling thread saw.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def stat_cpu_ticks(stat: str) -> int:
    """User + system ticks from the text of /proc/PID/stat (the name in parentheses may hold spaces)."""
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime and stime: fields 14 and 15 of the whole line


def status_kb(status: str, key: str) -> int | None:
    """The value in kB of ``key`` (``VmRSS``, ``VmHWM``) in the text of /proc/PID/status, or None."""
    for line in status.splitlines():
        name, _, value = line.partition(":")
        if name == key:
            return int(value.split()[0])
    return None


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (its threads included); 0.0 once it is gone."""
    try:
        return stat_cpu_ticks(Path(f"/proc/{pid}/stat").read_text()) / TICKS
    except OSError:
        return 0.0


def proc_status_mb(pid: int, key: str) -> float:
    """``key`` of /proc/PID/status in MB (``VmRSS``: resident now, ``VmHWM``: peak); 0.0 when unknown."""
    try:
        kb = status_kb(Path(f"/proc/{pid}/status").read_text(), key)
    except OSError:
        return 0.0
    return (kb or 0) / 1024


def proc_peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set since start or since the last reset) of ``pid`` in MB."""
    return proc_status_mb(pid, "VmHWM")


def reset_peak_rss(pid: int) -> bool:
    """Reset the kernel's peak RSS of ``pid`` to its current RSS; False where that is refused."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class Usage:
    """What one process used during a phase."""

    cpu_s: float
    peak_rss_mb: float


@dataclass
class PhaseMeter:
    """CPU seconds and peak RSS of ``pids`` (name -> pid) between ``start()`` and ``stop()``."""

    pids: Mapping[str, int]
    interval: float = 0.25
    _cpu0: dict[str, float] = field(default_factory=dict)
    _reset: dict[str, bool] = field(default_factory=dict)
    _sampled: dict[str, float] = field(default_factory=dict)
    _halt: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> PhaseMeter:
        self._reset = {name: reset_peak_rss(pid) for name, pid in self.pids.items()}
        self._sampled = {name: proc_status_mb(pid, "VmRSS") for name, pid in self.pids.items()}
        self._cpu0 = {name: proc_cpu_seconds(pid) for name, pid in self.pids.items()}
        self._thread = threading.Thread(target=self._sample, daemon=True, name="phase-meter")
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._halt.wait(self.interval):
            for name, pid in self.pids.items():
                self._sampled[name] = max(self._sampled[name], proc_status_mb(pid, "VmRSS"))

    def stop(self) -> dict[str, Usage]:
        cpu = {name: proc_cpu_seconds(pid) - self._cpu0[name] for name, pid in self.pids.items()}
        self._halt.set()
        if self._thread is not None:
            self._thread.join(5)
        return {
            name: Usage(
                cpu_s=round(cpu[name], 2),
                peak_rss_mb=round(
                    max(self._sampled[name], proc_peak_rss_mb(pid) if self._reset[name] else 0)
                ),
            )
            for name, pid in self.pids.items()
        }
