"""Shared pytest setup: the ``integration`` marker and the stack fixtures.

``kafka_bootstrap`` and ``clickhouse_url`` (session) and ``unique_name`` (per test) come from
``tests/stack_fixtures.py``; see its docstring for where the broker and the server come from.
Unit tests (``tests/unit``) use none of them and need no running service.
"""

from __future__ import annotations

import pytest

from tests.stack_fixtures import clickhouse_url, kafka_bootstrap, unique_name

__all__ = ["clickhouse_url", "kafka_bootstrap", "unique_name"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "integration: needs a Kafka-protocol broker and/or ClickHouse (started by the session fixtures)",
    )
