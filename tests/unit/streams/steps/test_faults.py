"""Crash points (streams.steps.faults): parsing KCOLLECT_FAULT_AT and dying at the Nth time a
point is reached."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from streams.steps import faults


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    yield
    faults.configure(None)


def test_parse_plan() -> None:
    assert faults.parse_plan(None) == {}
    assert faults.parse_plan("") == {}
    assert faults.parse_plan("after_insert:2") == {"after_insert": 2}
    assert faults.parse_plan("before_insert, before_commit:3") == {"before_insert": 1, "before_commit": 3}


@pytest.mark.parametrize("spec", ["nowhere:1", "after_insert:0", "after_insert:x", "after_insert:-1"])
def test_parse_plan_refuses_bad_specs(spec: str) -> None:
    with pytest.raises(ValueError, match="KCOLLECT_FAULT_AT"):
        faults.parse_plan(spec)


def test_unset_points_do_nothing() -> None:
    faults.configure(None)
    for _ in range(1000):
        faults.fault_point("after_insert")
    faults.configure("before_insert:1")
    faults.fault_point("after_insert")  # another point: no effect


def test_dies_with_97_at_the_nth_time() -> None:
    code = (
        "from streams.steps import faults\n"
        "faults.configure('after_insert:3')\n"
        "for i in range(1, 10):\n"
        "    print(i, flush=True)\n"
        "    faults.fault_point('after_insert')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == faults.EXIT_CODE == 97
    assert done.stdout.split() == ["1", "2", "3"]


def test_plan_is_read_from_the_environment() -> None:
    code = "from streams.steps import faults\nfaults.fault_point('before_commit')\nprint('alive')\n"
    env = {"KCOLLECT_FAULT_AT": "before_commit:1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, env=env)
    assert done.returncode == 97 and "alive" not in done.stdout
