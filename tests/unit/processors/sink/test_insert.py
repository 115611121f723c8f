"""The sink's insert pieces that hold no connection: the deduplication token and the up/down state.

The insert itself (one per month, bisecting refused rows, retry during outages, commit after the
acknowledgement) runs against the real ClickHouse in tests/integration/processors/sink/test_sink.py and
test_sink_outage.py.
"""

from __future__ import annotations

import calendar
import logging

import pytest
from clickhouse_driver.errors import NetworkError

from processors.sink.insert import ClickHouseHealth, SinkStats, insert_token
from processors.sink.result_rows import row_of
from processors.sink.windowing import PartitionWindow, WindowLimits
from streams.observability.metrics import SINK_CLICKHOUSE_UP

JAN = calendar.timegm((2026, 1, 15, 0, 0, 0)) * 1000
LIMITS = WindowLimits(1000, 10**9, 1.0)


def window(partition: int, start: int, clients: list[str], requested_at_ms: int = JAN) -> PartitionWindow:
    offsets = list(range(start, start + len(clients)))
    rows = [
        row_of(
            {"v": 1, "run_id": "r1", "client_id": c, "requested_at_ms": requested_at_ms,
             "collected_at_ms": requested_at_ms, "status": "ok", "metrics": {}, "computed": {}}
        )
        for c in clients
    ]  # fmt: skip
    end = start + len(clients)
    columns = [list(column) for column in zip(*rows, strict=True)]
    return PartitionWindow(
        ("results", partition), start, end, LIMITS, 0.0, columns, offsets, [f"m{o}" for o in offsets]
    )


def test_dedup_token_names_the_partition_offsets_month_and_data() -> None:
    token = insert_token(window(3, 100, ["a", "b"]), 202601, 0, 1, 2)
    assert token.startswith("results:3:100-102:202601:100-101:2:")
    assert token == insert_token(window(3, 100, ["a", "b"]), 202601, 0, 1, 2)  # deterministic
    assert token != insert_token(window(3, 100, ["a", "z"]), 202601, 0, 1, 2)  # same offsets, new data
    assert token != insert_token(window(4, 100, ["a", "b"]), 202601, 0, 1, 2)  # another partition
    assert token != insert_token(window(3, 100, ["a", "b"]), 202602, 0, 1, 2)  # another month


def test_health_logs_each_state_change_once(caplog: pytest.LogCaptureFixture) -> None:
    stats = SinkStats()
    health = ClickHouseHealth(stats)
    with caplog.at_level(logging.WARNING, logger="processors.sink.insert"):
        for _ in range(3):
            health.failed(NetworkError("Connection refused"))
        assert not health.up and SINK_CLICKHOUSE_UP._value.get() == 0  # type: ignore[attr-defined]
        health.succeeded()
        health.succeeded()
    assert health.up and SINK_CLICKHOUSE_UP._value.get() == 1  # type: ignore[attr-defined]
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and "pausing" in messages[0] and "back after" in messages[1]
    assert stats.outages == 1 and stats.insert_failures == 3
