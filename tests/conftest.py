"""Shared pytest setup: the ``integration`` marker and the stack fixtures.

``kafka_bootstrap`` and ``clickhouse_url`` (session), ``unique_name`` and ``local_cluster`` (per test)
come from ``tests/stack_fixtures.py``; see its docstring for where the broker and the server come from.
``apache_kafka`` (session, ``tests/kafka_broker.py``) is always a real Apache Kafka broker.
Unit tests (``tests/unit``) use none of them and need no running service.

A SIGTERM to the test run (a CI timeout, ``kill PID``) becomes a KeyboardInterrupt, as Ctrl-C does: pytest
then tears down its fixtures and the drills unwind their stacks, so the servers a session started are
stopped instead of outliving it.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

import pytest

from tests.kafka_broker import apache_kafka, tansu_broker
from tests.stack_fixtures import (
    clickhouse_url,
    kafka_bootstrap,
    local_cluster,
    share_test_environment,
    unique_name,
)

__all__ = [
    "apache_kafka",
    "clickhouse_url",
    "kafka_bootstrap",
    "local_cluster",
    "tansu_broker",
    "unique_name",
]


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_addoption(parser: pytest.Parser) -> None:
    """The fault campaign's seeds (tests/chaos/conftest.py): declared here, where every run sees them."""
    group = parser.getgroup("chaos", "the randomized fault campaign (tests/chaos)")
    group.addoption("--seed", dest="chaos_seed", type=int, help="run (replay) this one seed")
    group.addoption("--seeds", dest="chaos_seeds", type=int, help="run this many seeds in a row")
    group.addoption("--seed-start", dest="chaos_seed_start", type=int, help="the first of --seeds")


def pytest_configure(config: pytest.Config) -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    share_test_environment()
    config.addinivalue_line(
        "markers",
        "integration: needs a Kafka broker and/or ClickHouse (the session fixtures start them)",
    )
    config.addinivalue_line(
        "markers", "chdb: runs SQL on a current ClickHouse in-process (the chdb extra; make test-chdb)"
    )
    config.addinivalue_line(
        "markers", "install: installs the package into a fresh venv (needs the package index or pip's cache)"
    )
