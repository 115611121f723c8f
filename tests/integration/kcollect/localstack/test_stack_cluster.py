"""``kcollect stack up --clickhouse-cluster``: the broker, ZooKeeper and a 2 x 2 ClickHouse cluster as
processes; every command then uses the cluster (``stack.json`` names it); ``down`` stops all six."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kcollect.cli.stack import stack_app
from kcollect.localstack import stack
from kcollect.localstack.process import is_recorded_process
from kcollect.localstack.zookeeper import find_zookeeper
from streams.settings.model import load_settings
from streams.settings.stackfile import read_stack_file

pytestmark = pytest.mark.integration


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    try:
        find_zookeeper()
    except stack.StackError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(str(exc))
    folder = tmp_path / "state"
    monkeypatch.setenv("KCOLLECT_STATE_DIR", str(folder))
    for name in ("KCOLLECT_BOOTSTRAP_SERVERS", "KCOLLECT_CLICKHOUSE_URL", "KCOLLECT_CLICKHOUSE_CLUSTER"):
        monkeypatch.delenv(name, raising=False)
    yield folder
    stack.down()


def test_stack_up_with_a_cluster(state: Path) -> None:
    done = CliRunner().invoke(stack_app, ["up", "--clickhouse-cluster", "--json"])
    assert done.exit_code == 0, done.output
    info = json.loads(done.output)
    assert info["clickhouse_cluster"] == "kcollect"
    names = [p["name"] for p in info["processes"]]
    assert names.count("clickhouse") == 4 and names.count("zookeeper") == 1 and len(names) == 6
    address = load_settings().clickhouse()
    assert address.cluster == "kcollect"
    migrate = subprocess.run(
        [sys.executable, "-m", "kcollect", "db", "migrate"], capture_output=True, text=True, timeout=120
    )
    assert migrate.returncode == 0, migrate.stderr
    assert "on cluster kcollect" in migrate.stdout
    records = read_stack_file(state)
    assert records is not None
    # kcollect run's ensure_stack and a plain `stack up` reuse the running cluster, not replace it
    assert stack.up(state).processes == records.processes
    again = CliRunner().invoke(stack_app, ["up", "--json"])
    assert again.exit_code == 0 and json.loads(again.output)["clickhouse_cluster"] == "kcollect"
    stopped = stack.down()
    assert sorted(stopped) == sorted(names)
    assert not any(is_recorded_process(p) for p in records.processes)
