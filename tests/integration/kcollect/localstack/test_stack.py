"""``kcollect.localstack.stack`` up/down/status against real broker and clickhouse-server processes.

The broker is the one ``kcollect stack up`` picks here (Apache Kafka where java and mvn exist;
``KCOLLECT_TEST_BROKER`` chooses); one test starts the other broker explicitly. Each test gets its
own state folder through ``KCOLLECT_STATE_DIR`` and ends with ``down()``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_driver import Client
from confluent_kafka.admin import AdminClient
from typer.testing import CliRunner

from kcollect.cli.stack import stack_app
from kcollect.localstack import stack
from kcollect.localstack.clickhouse import find_clickhouse_server
from streams.settings.stackfile import STACK_FILE_NAME, ProcessRecord, StackFile, pid_alive, write_stack_file

pytestmark = pytest.mark.integration


BROKER = stack.choose_broker().kind
OTHER_BROKER = "tansu" if BROKER == "kafka" else "kafka"


@pytest.fixture(scope="module", autouse=True)
def _binaries() -> None:
    try:
        if BROKER == "tansu":
            stack.find_tansu()
        find_clickhouse_server()
    except stack.StackError as exc:
        pytest.skip(str(exc))


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "state"
    monkeypatch.setenv("KCOLLECT_STATE_DIR", str(folder))
    yield folder
    stack.down()


def _pids(stack_file: StackFile) -> dict[str, int]:
    return {p.name: p.pid for p in stack_file.processes}


def _clickhouse(url: str) -> Client:
    address = stack.parse_clickhouse_url(url)
    return Client(host=address.host, port=address.port, database=address.database)


def _dead_pid() -> int:
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


def test_up_starts_both_and_down_stops_them(state: Path) -> None:
    started = stack.up()

    assert started.bootstrap_servers.startswith("127.0.0.1:")
    assert started.clickhouse_url.startswith("clickhouse://127.0.0.1:")
    assert started.clickhouse_url.endswith("/kcollect")
    assert set(_pids(started)) == {BROKER, "clickhouse"}
    assert started.broker == BROKER
    AdminClient({"bootstrap.servers": started.bootstrap_servers}).list_topics(timeout=5)
    assert _clickhouse(started.clickhouse_url).execute("SELECT currentDatabase()") == [("kcollect",)]
    assert (state / STACK_FILE_NAME).is_file()

    assert sorted(stack.down()) == sorted(["clickhouse", BROKER])
    assert not any(pid_alive(pid) for pid in _pids(started).values())
    assert not (state / STACK_FILE_NAME).exists()
    assert stack.status()["running"] is False
    assert stack.down() == []


def test_up_twice_returns_the_running_stack(state: Path) -> None:
    first = stack.up()
    second = stack.up()

    assert second == first
    assert _pids(second) == _pids(first)


def test_status_json_through_the_cli(state: Path) -> None:
    runner = CliRunner()

    before = runner.invoke(stack_app, ["status", "--json"])
    assert before.exit_code == 0
    assert json.loads(before.stdout)["running"] is False

    started = runner.invoke(stack_app, ["up", "--json"])
    assert started.exit_code == 0, started.output
    info = json.loads(runner.invoke(stack_app, ["status", "--json"]).stdout)
    assert {"bootstrap_servers", "clickhouse_url", "running", "processes"} <= set(info)
    assert info["running"] is True
    assert info["bootstrap_servers"] == json.loads(started.stdout)["bootstrap_servers"]
    assert {p["name"] for p in info["processes"]} == {BROKER, "clickhouse"}
    assert info["broker"] == BROKER


def test_stale_stack_file_with_dead_pids_is_cleaned_by_up(state: Path) -> None:
    dead = (
        ProcessRecord(name="tansu", pid=_dead_pid(), port=1, log_path="x"),
        ProcessRecord(name="clickhouse", pid=_dead_pid(), port=2, log_path="y"),
    )
    write_stack_file(StackFile(bootstrap_servers="127.0.0.1:1", clickhouse_url="c", processes=dead), state)
    assert stack.status()["running"] is False

    started = stack.up()

    assert stack.status()["running"] is True
    assert started.bootstrap_servers != "127.0.0.1:1"
    assert not set(_pids(started).values()) & {p.pid for p in dead}


def test_half_dead_stack_is_restarted_and_its_survivor_stopped(state: Path) -> None:
    first = stack.up()
    os.kill(_pids(first)["clickhouse"], signal.SIGKILL)

    second = stack.up()

    assert not pid_alive(_pids(first)[BROKER])
    assert _pids(second)[BROKER] != _pids(first)[BROKER]
    assert stack.status()["running"] is True


def test_clickhouse_data_survives_down_and_up(state: Path) -> None:
    url = stack.up().clickhouse_url
    _clickhouse(url).execute("CREATE TABLE kept (n UInt32) ENGINE = MergeTree ORDER BY n")
    _clickhouse(url).execute("INSERT INTO kept (n) VALUES", [(1,), (2,)])
    stack.down()

    url = stack.up().clickhouse_url

    assert _clickhouse(url).execute("SELECT sum(n) FROM kept") == [(3,)]


def test_down_never_signals_a_pid_that_is_not_ours(state: Path) -> None:
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        record = ProcessRecord(name="tansu", pid=bystander.pid, port=9, log_path="x")
        write_stack_file(StackFile(bootstrap_servers="b", clickhouse_url="c", processes=(record,)), state)

        assert stack.down() == []
        assert bystander.poll() is None
        assert not (state / STACK_FILE_NAME).exists()
    finally:
        bystander.kill()
        bystander.wait()


def test_local_broker_variable_chooses_the_other_broker(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if OTHER_BROKER == "kafka" and stack.choose_broker("KCOLLECT_NO_SUCH_VARIABLE").kind != "kafka":
        pytest.skip("Apache Kafka needs java and mvn")
    monkeypatch.setenv("KCOLLECT_LOCAL_BROKER", OTHER_BROKER)
    started = stack.up()

    assert started.broker == OTHER_BROKER
    assert set(_pids(started)) == {OTHER_BROKER, "clickhouse"}
    AdminClient({"bootstrap.servers": started.bootstrap_servers}).list_topics(timeout=5)
    info = json.loads(CliRunner().invoke(stack_app, ["status", "--json"]).stdout)
    assert info["broker"] == OTHER_BROKER
    assert sorted(stack.down()) == sorted(["clickhouse", OTHER_BROKER])
