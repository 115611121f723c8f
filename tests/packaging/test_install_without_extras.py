"""`pip install kcollect` without extras (what the Dockerfile installs) starts every command and service.

A fresh venv (no system site-packages) gets the package from a copy of the tree (the same files the
Dockerfile copies) with pip's cache; then ``kcollect <cmd> --help`` runs for every command and
sub-command, and every module of the installed packages is imported (services import their
dependencies when they start, after ``--help`` would have returned). Runs in the default test run
(marker ``install``); about 20 s with a warm pip cache.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.install

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "streams", "producers", "processors", "kcollect")

# Run inside the fresh venv: every module of the packages, and the help of every (sub-)command.
PROBE = """
import importlib, json, pkgutil, sys
import typer
from typer.testing import CliRunner
failed = {}
for package in sys.argv[1:]:
    root = importlib.import_module(package)
    for info in pkgutil.walk_packages(root.__path__, package + "."):
        if info.name.endswith(".__main__"):
            continue  # runs the CLI
        try:
            importlib.import_module(info.name)
        except Exception as exc:
            failed[info.name] = f"{type(exc).__name__}: {exc}"
from kcollect.cli.main import app
command = typer.main.get_command(app)
def paths(cmd, prefix):
    yield prefix
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from paths(sub, [*prefix, name])
helps = {}
for path in paths(command, []):
    result = CliRunner().invoke(app, [*path, "--help"])
    helps[" ".join(path) or "(top)"] = result.exit_code
print(json.dumps({"import_failures": failed, "help_exit_codes": helps}))
"""


def _run(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PIP_NO_"))}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_a_plain_install_starts_every_command_and_imports_every_module(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    installed = _run([python, "-m", "pip", "install", "-q", str(source)], tmp_path, 600)
    assert installed.returncode == 0, installed.stderr[-3000:]
    top = _run([str(venv / "bin" / "kcollect"), "--help"], tmp_path, 60)
    assert top.returncode == 0, top.stderr[-3000:]
    probe = _run([python, "-c", PROBE, *PACKAGES], tmp_path, 300)
    assert probe.returncode == 0, probe.stderr[-3000:]
    report = json.loads(probe.stdout.strip().splitlines()[-1])
    assert report["import_failures"] == {}
    helps = report["help_exit_codes"]
    assert {"processor", "sink", "enqueue", "scheduler", "exporter"} <= set(helps)
    assert {path: code for path, code in helps.items() if code != 0} == {}
    smoke = _run([python, "-c", dockerfile_smoke_import()], tmp_path, 300)
    assert smoke.returncode == 0, smoke.stderr[-3000:]


def dockerfile_smoke_import() -> str:
    """The import check the Dockerfile's build runs after `pip install .` (run here without Docker)."""
    text = (ROOT / "Dockerfile").read_text()
    match = re.search(r'&& python -c "([^"]+)"', text)
    assert match, "the Dockerfile's smoke test imports every module"
    return match.group(1)
