"""An unreachable broker fails every command and service at start with one clear line and exit code 3,
not a storm of librdkafka lines (their logs go through Python logging, once per distinct message)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4]
COMMANDS = [
    ["topics", "create"],
    ["processor"],
    ["sink"],
    ["enqueue", "--clients", "10", "--run-id", "r-unreachable"],
    ["lag"],
    ["doctor"],
    ["exporter", "--port", "0"],
]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_unreachable_broker_is_one_line_and_exit_3(command: list[str], tmp_path: Path) -> None:
    port = _closed_port()
    env = os.environ | {
        "KCOLLECT_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
        "KCOLLECT_CLICKHOUSE_URL": f"clickhouse://127.0.0.1:{port}/kcollect",
        "KCOLLECT_BROKER_TIMEOUT_SECONDS": "2",
        "KCOLLECT_STATE_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-m", "kcollect", *command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 3, done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("kcollect: the Kafka broker did not answer within 2 s:"), lines[0]
    assert "Connection refused" in lines[0]
