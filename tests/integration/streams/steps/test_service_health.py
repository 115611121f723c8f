"""A real `kcollect processor` serves /healthz and /readyz that follow its broker going away and
coming back (a private Tansu broker stopped and started again on the same port)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from kcollect.localstack.ports import free_port
from kcollect.localstack.stack import start_tansu, stop_process
from tests.integration.pipeline import make_pipeline

pytestmark = pytest.mark.integration


def status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not {what} within {timeout} s"
        time.sleep(0.2)


def test_processor_readiness_follows_a_broker_outage(
    clickhouse_url: str, unique_name: str, tmp_path: Path
) -> None:
    broker_port, http_port = free_port(), free_port()
    broker = start_tansu(tmp_path / "broker", broker_port)
    pipe = make_pipeline(
        f"127.0.0.1:{broker_port}",
        clickhouse_url,
        unique_name,
        tmp_path,
        KCOLLECT_HTTP_PORT=str(http_port),
        KCOLLECT_BROKER_FLAVOR="tansu",
        KCOLLECT_HEALTHZ_MAX_AGE_SECONDS="30",
    )
    try:
        pipe.start("processor")
        pipe.wait_ready("processor")
        wait_for(lambda: status(http_port, "/readyz") == 200, 20, "ready")
        assert status(http_port, "/healthz") == 200
        stop_process(broker)
        wait_for(lambda: status(http_port, "/readyz") == 503, 30, "unready without a broker")
        assert status(http_port, "/healthz") == 200  # the loop itself is alive
        broker = start_tansu(tmp_path / "broker", broker_port)
        assert pipe.cli("topics", "create").returncode == 0  # memory storage: the topics are gone
        wait_for(lambda: status(http_port, "/readyz") == 200, 60, "ready again")
        assert pipe.stop("processor") == 0
    finally:
        pipe.kill_all()
        stop_process(broker)
