"""The ``kcollect`` entry point turns faulthandler on: a crash inside a C extension leaves the Python
stacks of every thread in the service's log, not just an exit code of -11."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]

PROBE = """
import faulthandler
import kcollect.cli.main as cli
cli.run_cli = lambda args: print("enabled" if faulthandler.is_enabled() else "disabled") or 0
cli.main()
"""


def test_main_enables_faulthandler() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "enabled"


def test_a_segfault_leaves_python_stacks_on_stderr() -> None:
    crash = (
        "import ctypes, kcollect.cli.main as cli; cli.run_cli = lambda args: ctypes.string_at(0); cli.main()"
    )
    done = subprocess.run([sys.executable, "-c", crash], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "Fatal Python error: Segmentation fault" in done.stderr, done.stderr
    assert "<lambda>" in done.stderr, done.stderr
