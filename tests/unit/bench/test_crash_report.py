"""The harness's report on a dead service: the signal by name, cores only in a folder of their own, the
core found by PID, and the native stacks of a real crash in a thread that blocks every signal (as
librdkafka's threads do), where faulthandler prints nothing."""

from __future__ import annotations

import resource
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bench import crash_report as cr


def test_exit_text_names_the_signal() -> None:
    assert cr.exit_text(-11) == "killed by SIGSEGV (-11)"
    assert cr.exit_text(97) == "exit code 97"
    assert cr.exit_text(None) == "running"


def test_only_signals_the_harness_never_sends_are_crashes() -> None:
    assert cr.is_native_crash(-signal.SIGSEGV) and cr.is_native_crash(-signal.SIGABRT)
    assert not any(cr.is_native_crash(c) for c in (None, 0, 97, -signal.SIGKILL, -signal.SIGTERM))


@pytest.mark.parametrize(
    ("pattern", "folder"),
    [("/tmp/cores/core.%e.%p\n", Path("/tmp/cores")), ("core\n", None), ("|/usr/lib/systemd/x %P", None)],
)
def test_cores_only_go_to_a_folder_of_their_own(tmp_path: Path, pattern: str, folder: Path | None) -> None:
    pattern_file = tmp_path / "core_pattern"
    pattern_file.write_text(pattern)
    assert cr.core_folder(pattern_file) == folder
    before = resource.getrlimit(resource.RLIMIT_CORE)
    try:
        if folder is None:
            assert cr.allow_cores(pattern_file) is False
            assert resource.getrlimit(resource.RLIMIT_CORE) == before  # nothing dumped into the tree
    finally:
        resource.setrlimit(resource.RLIMIT_CORE, before)


def test_find_core_by_pid(tmp_path: Path) -> None:
    (tmp_path / "core.python.1234").write_bytes(b"")
    (tmp_path / "core.rdk:main.12345").write_bytes(b"")
    assert cr.find_core(1234, tmp_path) == tmp_path / "core.python.1234"
    assert cr.find_core(12345, tmp_path) == tmp_path / "core.rdk:main.12345"
    assert cr.find_core(99, tmp_path) is None and cr.find_core(1234, None) is None


CRASH_IN_MASKED_THREAD = textwrap.dedent(
    """
    #include <pthread.h>
    #include <signal.h>
    #include <unistd.h>
    static void *fault(void *unused) { usleep(100000); *(volatile int *)0 = 1; return unused; }
    void crash_in_masked_thread(void) {
        pthread_t thread; sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);  /* what rd_kafka_new does around its threads */
        pthread_create(&thread, 0, fault, 0);
        pthread_sigmask(SIG_SETMASK, &old, 0);
    }
    """
)


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
def test_faulthandler_is_silent_for_a_crash_in_a_thread_that_blocks_signals(tmp_path: Path) -> None:
    """Why a crash in a librdkafka thread leaves only the exit code: the report must then say so."""
    source, library = tmp_path / "crash.c", tmp_path / "crash.so"
    source.write_text(CRASH_IN_MASKED_THREAD)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(library), str(source), "-lpthread"], check=True)
    program = (
        "import ctypes, faulthandler, time; faulthandler.enable(); "
        f"ctypes.CDLL({str(library)!r}).crash_in_masked_thread(); time.sleep(5)"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGSEGV
    assert "Fatal Python error" not in done.stderr  # faulthandler never ran
    report = cr.death_report("victim", done.returncode, 424242, "last line\n", sys.executable)
    assert "killed by SIGSEGV (-11)" in report and "last line" in report
    assert "librdkafka thread" in report or "core " in report
