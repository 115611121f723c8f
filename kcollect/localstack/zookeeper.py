"""Debian's ZooKeeper (``apt-get install zookeeper``) run as a plain Java process for a local cluster.

Standalone mode, one ``zoo.cfg`` under the state folder, listening on 127.0.0.1 only, the admin HTTP
server off. Ready once the four-letter word ``srvr`` reports its mode (it serves requests).
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

from kcollect.localstack.errors import StackError
from kcollect.localstack.ports import LOOPBACK, ensure_free, free_port, port_open
from kcollect.localstack.process import MARKER_VARIABLE, marker, spawn_detached, wait_ready
from streams.settings.stackfile import ProcessRecord

NAME = "zookeeper"
JAVA_DIR = Path("/usr/share/java")
STARTUP_TIMEOUT = 60.0
MAIN_CLASS = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
_INSTALL_HINT = "ZooKeeper is not installed: run `sudo apt-get install zookeeper` (and a Java runtime)"


def find_zookeeper(java_dir: Path = JAVA_DIR) -> tuple[Path, str]:
    """The ``java`` binary and the class path of Debian's ZooKeeper; StackError when either is missing."""
    java = shutil.which("java")
    if java is None or not (java_dir / "zookeeper.jar").is_file():
        raise StackError(_INSTALL_HINT)
    return Path(java), f"{java_dir / 'zookeeper.jar'}:{java_dir}/*"


def zoo_cfg(data_dir: Path, port: int) -> str:
    """A standalone server on 127.0.0.1:port keeping its data in ``data_dir``."""
    return "\n".join(
        (
            "tickTime=500",
            "initLimit=10",
            "syncLimit=5",
            f"dataDir={data_dir}",
            f"clientPort={port}",
            f"clientPortAddress={LOOPBACK}",
            "admin.enableServer=false",
            "4lw.commands.whitelist=ruok,srvr,stat",
            "maxClientCnxns=0",
            "",
        )
    )


def zookeeper_answers(port: int, timeout: float) -> bool:
    """True when ``srvr`` on 127.0.0.1:port reports a mode: the server serves requests. (``ruok``
    answers ``imok`` before that, and clickhouse-server 18.16 crashes on a ZooKeeper that accepts its
    connection but drops the handshake.)"""
    if not port_open(LOOPBACK, port, timeout=max(0.1, min(timeout, 0.5))):
        return False
    try:
        with socket.create_connection((LOOPBACK, port), timeout=max(timeout, 0.5)) as sock:
            sock.sendall(b"srvr")
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
            return b"Mode: " in answer
    except OSError:
        return False


def start_zookeeper(
    folder: Path, port: int | None = None, *, timeout: float = STARTUP_TIMEOUT
) -> ProcessRecord:
    """Start a detached standalone ZooKeeper with data in ``folder/zookeeper/`` and wait until it serves.

    Output goes to ``folder/logs/zookeeper.log``; on failure the process is stopped and StackError
    names the log.
    """
    java, classpath = find_zookeeper()
    port = ensure_free(port) if port else free_port()
    home = folder / "zookeeper"
    (home / "data").mkdir(parents=True, exist_ok=True)
    config = home / "zoo.cfg"
    config.write_text(zoo_cfg(home / "data", port))
    log_path = folder / "logs" / "zookeeper.log"
    env = {**os.environ, MARKER_VARIABLE: marker(NAME, port)}
    argv = [str(java), "-Xmx256m", "-cp", classpath, MAIN_CLASS, str(config)]
    pid = spawn_detached(argv, log_path, env, cwd=home)
    record = ProcessRecord(name=NAME, pid=pid, port=port, log_path=str(log_path))
    wait_ready(record, lambda left: zookeeper_answers(port, min(left, 2.0)), timeout)
    return record
