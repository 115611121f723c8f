"""A SIGTERM to a test run tears its fixtures down (tests/conftest.py): the process a session fixture
started is stopped, not left behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

VICTIM = """
import subprocess, time
from pathlib import Path
import pytest

HERE = Path(__file__).parent

@pytest.fixture(scope="session")
def server():
    proc = subprocess.Popen(["sleep", "300"])
    (HERE / "server.pid").write_text(str(proc.pid))
    yield proc
    proc.kill()
    proc.wait()

def test_runs_until_terminated(server):
    (HERE / "running").write_text("yes")
    time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "\nState:\tZ" in status.read_text())


def test_sigterm_runs_fixture_teardown(tmp_path: Path) -> None:
    (tmp_path / "test_victim.py").write_text(VICTIM)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-p", "no:cacheprovider"]
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    run = subprocess.Popen(
        [*command, str(tmp_path / "test_victim.py")], cwd=ROOT, env=env, stdout=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "running").exists():
            assert run.poll() is None and time.monotonic() < deadline, run.communicate()[0]
            time.sleep(0.05)
        server = int((tmp_path / "server.pid").read_text())
        run.send_signal(signal.SIGTERM)
        output = run.communicate(timeout=30)[0].decode()
        stopped = not _alive(server)
        if not stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(server, signal.SIGKILL)
        assert stopped, f"the fixture's process outlived the run: {output}"
        assert run.returncode == 2, output  # pytest's 'interrupted'
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
