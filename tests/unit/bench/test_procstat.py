"""bench.procstat: the /proc parsers, and the phase meter on this test's own process."""

from __future__ import annotations

import os
import time

import pytest

from bench.procstat import PhaseMeter, proc_cpu_seconds, stat_cpu_ticks, status_kb

# /proc/PID/stat of a java process: the command name holds a space and a parenthesis
STAT = (
    "4242 (java (main) x) S 1 4242 4242 0 -1 4194560 91734 0 0 0 1523 377 0 0 20 0 48 0 "
    "1016234 4031524864 98765 18446744073709551615 1 1 0 0 0 0 0 4096 17610 0 0 0 17 1 0 0 0 0 0"
)
STATUS = "Name:\tjava\nVmPeak:\t 4000000 kB\nVmHWM:\t  512000 kB\nVmRSS:\t  400000 kB\nThreads:\t48\n"


def test_cpu_ticks_are_utime_plus_stime_after_the_name() -> None:
    assert stat_cpu_ticks(STAT) == 1523 + 377


def test_status_values_by_key() -> None:
    assert status_kb(STATUS, "VmHWM") == 512_000
    assert status_kb(STATUS, "VmRSS") == 400_000
    assert status_kb(STATUS, "VmSwap") is None
    assert status_kb("VmRSSX:\t 1 kB\n", "VmRSS") is None  # a key is matched whole, not by prefix


def test_malformed_stat_raises() -> None:
    with pytest.raises(IndexError):
        stat_cpu_ticks("4242 (java) S 1")


def test_a_gone_process_reads_as_zero() -> None:
    assert proc_cpu_seconds(2**22 + 12345) == 0.0  # above the kernel's pid_max limit: never a live pid


def test_meter_sees_the_cpu_and_memory_a_phase_uses() -> None:
    pid = os.getpid()
    meter = PhaseMeter({"self": pid}, interval=0.02).start()
    started = time.process_time()
    while time.process_time() - started < 0.3:  # burn CPU
        pass
    block = bytearray(64 * 2**20)  # 64 MB, touched
    for i in range(0, len(block), 4096):
        block[i] = 1
    usage = meter.stop()["self"]
    assert 0.2 <= usage.cpu_s <= 5
    assert usage.peak_rss_mb >= 64
    del block
