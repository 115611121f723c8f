"""ClickHouse over TLS with a CA the test makes: clickhouse-server 18.16's secure native port, reached by
every client through ``streams.clickhouse.connect`` with KCOLLECT_CLICKHOUSE_CA_CERTS; a wrong CA fails
clearly (one line, exit 5); KCOLLECT_CLICKHOUSE_VERIFY=false skips the check."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kcollect.localstack.chconfig import TlsListener
from kcollect.localstack.clickhouse import start_clickhouse
from kcollect.localstack.ports import free_port
from kcollect.localstack.process import stop_process
from processors.processor.subsystems.sql_query import SqlSubsystem
from streams.clickhouse.client import ClickHouseUnavailableError, check_server, connect
from streams.settings.model import load_settings
from tests.tls_files import TlsFiles, make_ca, make_server_files

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[4]


@pytest.fixture(scope="module")
def secure_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, TlsFiles, Path]]:
    folder = tmp_path_factory.mktemp("ch-tls")
    files = make_server_files(folder / "tls")
    wrong_ca = make_ca(folder / "other", "wrong-ca")
    port = free_port()
    record = start_clickhouse(folder / "state", tls=TlsListener(port, files.server_cert, files.server_key))
    try:
        yield port, files, wrong_ca
    finally:
        stop_process(record)


def _env(port: int, ca: Path, **more: str) -> dict[str, str]:
    return {
        "KCOLLECT_CLICKHOUSE_URL": f"clickhouses://127.0.0.1:{port}/kcollect_tls",
        "KCOLLECT_CLICKHOUSE_CA_CERTS": str(ca),
        "KCOLLECT_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        **more,
    }


def _kcollect(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kcollect", *args], cwd=ROOT, env=os.environ | env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_every_client_reaches_the_secure_port_with_the_ca(
    secure_server: tuple[int, TlsFiles, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, files, _ = secure_server
    done = _kcollect(_env(port, files.ca_cert), "db", "migrate")
    assert done.returncode == 0, done.stderr
    assert "clickhouses://127.0.0.1" in done.stdout
    for key, value in _env(port, files.ca_cert).items():
        monkeypatch.setenv(key, value)
    address = load_settings().clickhouse()
    assert address.secure and address.ca_certs == str(files.ca_cert) and address.verify
    assert check_server(address)
    client = connect(address)
    try:
        # the secure port speaks only TLS, so an answer here is an answer over TLS
        assert client.execute("SELECT currentDatabase()") == [("kcollect_tls",)]
        client.execute("CREATE TABLE IF NOT EXISTS fleet (client_id String, cpu Float64) ENGINE = Memory")
        client.execute("INSERT INTO fleet VALUES", [("c-1", 0.5), ("c-2", 0.25)])
    finally:
        client.disconnect()
    sql = SqlSubsystem(
        "inventory", ["cpu"], "SELECT client_id, cpu FROM fleet WHERE client_id IN %(client_ids)s", address, 1
    )
    columns = sql.fetch([{"client_id": "c-1", "run_id": "r"}, {"client_id": "c-9", "run_id": "r"}])
    assert columns == {"cpu": [0.5, None]}


def test_a_wrong_ca_fails_with_one_line_and_exit_5(secure_server: tuple[int, TlsFiles, Path]) -> None:
    port, _, wrong_ca = secure_server
    done = _kcollect(_env(port, wrong_ca), "db", "migrate")
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 5, done.stderr
    assert len(lines) == 1, done.stderr
    assert "TLS failed" in lines[0] and "CERTIFICATE_VERIFY_FAILED" in lines[0], lines[0]
    assert "KCOLLECT_CLICKHOUSE_CA_CERTS" in lines[0]


def test_a_wrong_ca_stops_the_sink_at_start(
    secure_server: tuple[int, TlsFiles, Path], kafka_bootstrap: str, unique_name: str
) -> None:
    port, _, wrong_ca = secure_server
    env = _env(
        port, wrong_ca, KCOLLECT_BOOTSTRAP_SERVERS=kafka_bootstrap, KCOLLECT_TOPIC_PREFIX=f"{unique_name}."
    )
    assert _kcollect(env, "topics", "create").returncode == 0
    done = _kcollect(env, "sink")
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 5, done.stderr
    assert lines[-1].startswith("kcollect: ClickHouse at clickhouses://") and "TLS failed" in lines[-1], lines


def test_verify_off_accepts_a_certificate_from_another_ca(
    secure_server: tuple[int, TlsFiles, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, _, wrong_ca = secure_server
    for key, value in _env(port, wrong_ca, KCOLLECT_CLICKHOUSE_VERIFY="false").items():
        monkeypatch.setenv(key, value)
    assert check_server(load_settings().clickhouse())
    monkeypatch.setenv("KCOLLECT_CLICKHOUSE_VERIFY", "true")
    with pytest.raises(ClickHouseUnavailableError, match="CERTIFICATE_VERIFY_FAILED"):
        check_server(load_settings().clickhouse())
