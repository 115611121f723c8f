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


def test_each_command_and_command_group_is_the_module_of_its_name() -> None:
    from kcollect.cli.main import app

    modules = {str(c.name): {c.callback.__module__} for c in app.registered_commands if c.callback}
    for group in app.registered_groups:
        assert group.typer_instance is not None
        callbacks = [c.callback for c in group.typer_instance.registered_commands if c.callback]
        modules[str(group.name)] = {callback.__module__ for callback in callbacks}
    assert len(modules) >= 15
    assert {name: where for name, where in modules.items() if where != {f"kcollect.cli.{name}"}} == {}
