"""A clickhouse-server run as a plain local process, and the ``clickhouse://`` URLs that reach it.

The server binary comes from the Debian package (installed on demand when running as root with
apt-get); its config is rendered by ``kcollect.localstack.chconfig``. Data stays in the state folder,
so it survives a stop and start.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from clickhouse_driver import Client

from kcollect.localstack.chconfig import (
    SYSTEM_CONFIG_DIR,
    ClickHouseLayout,
    ClickHousePorts,
    TlsListener,
    write_config,
)
from kcollect.localstack.errors import StackError
from kcollect.localstack.ports import (
    LOOPBACK,
    ensure_free,
    free_port,
    port_open,
    wait_answering,
)
from kcollect.localstack.process import MARKER_VARIABLE, marker, spawn_detached, stop_process, wait_ready
from streams.clickhouse.client import connect
from streams.settings.model import ClickHouseAddress, parse_clickhouse_url
from streams.settings.stackfile import ProcessRecord

NAME = "clickhouse"
DATABASE = "kcollect"
STARTUP_TIMEOUT = 30.0
_SERVER_CANDIDATES = ("/usr/bin/clickhouse-server", "/usr/sbin/clickhouse-server")
_INSTALL_HINT = (
    "clickhouse-server is not installed: run `sudo apt-get install clickhouse-server`, "
    "or set KCOLLECT_CLICKHOUSE_URL to a running server"
)
_apt_updated = False


def clickhouse_url(port: int, database: str = DATABASE) -> str:
    """The URL of the local server on 127.0.0.1:port."""
    return f"clickhouse://{LOOPBACK}:{port}/{database}"


def _server_binary() -> Path | None:
    found = shutil.which("clickhouse-server")
    if found:
        return Path(found)
    return next((Path(p) for p in _SERVER_CANDIDATES if os.access(p, os.X_OK)), None)


def _apt(*args: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run(["apt-get", *args], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        raise StackError(f"apt-get {' '.join(args)} failed ({done.returncode}): {tail}")


def install_clickhouse() -> None:
    """``apt-get update`` (once per process) and install clickhouse-server; root and apt-get only."""
    global _apt_updated
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise StackError(_INSTALL_HINT)
    if not _apt_updated:
        _apt("update")
        _apt_updated = True
    _apt("install", "-y", "clickhouse-server", "clickhouse-client")


def find_clickhouse_server(install: bool = True) -> Path:
    """The clickhouse-server binary, installing the package first when allowed and possible."""
    binary = _server_binary()
    if binary is None and install:
        install_clickhouse()
        binary = _server_binary()
    if binary is None:
        raise StackError(_INSTALL_HINT)
    if not (SYSTEM_CONFIG_DIR / "config.xml").is_file():
        raise StackError(f"{SYSTEM_CONFIG_DIR}/config.xml is missing: reinstall clickhouse-server")
    return binary


def _client(address: ClickHouseAddress, database: str, timeout: float) -> Client:
    return connect(
        address, database, connect_timeout=max(timeout, 0.5), send_receive_timeout=max(timeout, 2.0)
    )


def clickhouse_answers(url: str, timeout: float) -> bool:
    """True when ``SELECT 1`` over the native port succeeds (connecting to database ``default``)."""
    address = parse_clickhouse_url(url)
    # Probe the port first: the driver logs a traceback for every refused connection.
    if not port_open(address.host, address.port, timeout=max(0.1, min(timeout, 0.5))):
        return False
    client = _client(address, "default", timeout)
    try:
        return bool(client.execute("SELECT 1") == [(1,)])
    except Exception:  # driver errors while the server is still starting
        return False
    finally:
        client.disconnect()


def wait_clickhouse(url: str, timeout: float = STARTUP_TIMEOUT) -> None:
    """Wait until the server behind ``url`` answers ``SELECT 1``; StackError after ``timeout`` s."""
    wait_answering(lambda seconds: clickhouse_answers(url, seconds), f"ClickHouse at {url}", timeout)


def create_database(url: str) -> None:
    """``CREATE DATABASE IF NOT EXISTS`` for the URL's database."""
    address = parse_clickhouse_url(url)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", address.database):
        raise ValueError(f"unsupported database name: {address.database!r}")
    client = _client(address, "default", 5.0)
    try:
        client.execute(f"CREATE DATABASE IF NOT EXISTS {address.database}")
    finally:
        client.disconnect()


def _distinct_ports(tcp: int | None) -> ClickHousePorts:
    chosen: list[int] = [ensure_free(tcp)] if tcp else []
    while len(chosen) < 3:
        port = free_port()
        if port not in chosen:
            chosen.append(port)
    return ClickHousePorts(tcp=chosen[0], http=chosen[1], interserver=chosen[2])


def start_clickhouse(
    folder: Path, port: int | None = None, *, timeout: float = STARTUP_TIMEOUT, tls: TlsListener | None = None
) -> ProcessRecord:
    """Start a detached clickhouse-server (native port ``port``) and wait until it answers.

    Config and data live in ``folder/clickhouse/`` (data kept across restarts); output goes to
    ``folder/logs/clickhouse.log`` and the server's own logs next to it. The ``kcollect`` database is
    created. ``tls`` adds a secure native port (the plain one stays, for readiness and set-up). On
    failure the process is stopped and StackError names the log files.
    """
    binary = find_clickhouse_server()
    layout = ClickHouseLayout.under(folder)
    ports = _distinct_ports(port)
    config = write_config(layout, ports, tls=tls)
    log_path = layout.log_dir / "clickhouse.log"
    env = {**os.environ, MARKER_VARIABLE: marker(NAME, ports.tcp)}
    argv = [str(binary), f"--config-file={config}"]
    pid = spawn_detached(argv, log_path, env, cwd=layout.config_dir)
    record = ProcessRecord(name=NAME, pid=pid, port=ports.tcp, log_path=str(log_path))
    url = clickhouse_url(ports.tcp)
    logs = (layout.error_log,)
    wait_ready(record, lambda left: clickhouse_answers(url, min(left, 2.0)), timeout, logs)
    try:
        create_database(url)
    except Exception as exc:
        stop_process(record)
        raise StackError(f"cannot create database {DATABASE} at {url}: {exc}; see {logs[0]}") from exc
    return record
