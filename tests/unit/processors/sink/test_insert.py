"""The sink's insert pieces that hold no connection: the deduplication token and the up/down state.

The insert itself (one per month, bisecting refused rows, retry during outages, commit after the
acknowledgement) runs against the real ClickHouse in tests/integration/processors/sink/test_sink.py and
test_sink_outage.py.
"""

from __future__ import annotations

import calendar
import logging
import threading
import time

import pytest
from clickhouse_driver.errors import NetworkError

from processors.sink.insert import (
    UNEXPECTED_ATTEMPTS,
    ClickHouseHealth,
    SinkStats,
    UnexpectedInsertError,
    WindowWriter,
    insert_token,
    write_with_retry,
)
from processors.sink.insert_step import InsertStep, InsertWorkerError
from processors.sink.result_rows import row_of
from processors.sink.windowing import PartitionWindow, WindowLimits
from streams.kafka.producer import DeliveryTracker
from streams.observability.metrics import SINK_CLICKHOUSE_UP
from streams.settings.model import ClickHouseAddress
from streams.steps.strategy import Batch

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


class _FailingWriter:
    """A writer whose every attempt raises ``error`` (pure: no connection)."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.attempts = 0
        self.resets = 0

    def write(self, window: PartitionWindow, progress: object = None) -> list[tuple[int, Exception]]:
        self.attempts += 1
        raise self.error

    def reset(self) -> None:
        self.resets += 1


def test_a_window_without_valid_rows_is_written_without_touching_clickhouse() -> None:
    # every record of the window was dead-lettered at decode: nothing to insert, nothing refused
    empty = PartitionWindow(("results", 0), 0, 5, LIMITS, 0.0)
    nowhere = ClickHouseAddress("127.0.0.1", 1, "nowhere")  # port 1: a connection attempt would fail
    assert WindowWriter(nowhere, SinkStats()).write(empty) == []


def test_an_error_that_is_not_an_outage_is_retried_a_bounded_number_of_times() -> None:
    writer = _FailingWriter(TypeError("unsupported operand"))
    stop = threading.Event()
    timer = threading.Timer(20.0, stop.set)  # before the fix: retried for ever, until this stop
    timer.start()
    try:
        with pytest.raises(UnexpectedInsertError) as caught:
            write_with_retry(writer, window(0, 0, ["a"]), ClickHouseHealth(SinkStats()), stop, backoff=0.0)  # type: ignore[arg-type]
    finally:
        timer.cancel()
    assert writer.attempts == UNEXPECTED_ATTEMPTS
    assert isinstance(caught.value.__cause__, TypeError)


def test_an_outage_is_retried_until_the_sink_stops() -> None:
    writer = _FailingWriter(NetworkError("Code: 210. Connection refused"))
    stop = threading.Event()
    timer = threading.Timer(0.5, stop.set)
    timer.start()
    health = ClickHouseHealth(SinkStats())
    assert write_with_retry(writer, window(0, 0, ["a"]), health, stop, backoff=0.01) is None  # type: ignore[arg-type]
    assert writer.attempts > UNEXPECTED_ATTEMPTS and not health.up


class _Sink:
    """The next step of the insert step: keeps what it is handed."""

    def __init__(self) -> None:
        self.batches: list[Batch[None]] = []

    def submit(self, batch: Batch[None]) -> None:
        self.batches.append(batch)

    def poll(self) -> None:
        pass

    def join(self, timeout: float | None = None) -> None:
        pass

    def close(self) -> None:
        pass

    def terminate(self) -> None:
        pass


def test_an_unexpected_insert_error_stops_the_sink_with_the_window_uncommitted() -> None:
    writer = _FailingWriter(TypeError("unsupported operand"))
    after = _Sink()
    step = InsertStep([writer], ClickHouseHealth(SinkStats()), lambda w, bad: DeliveryTracker(), after)  # type: ignore[list-item]
    win = window(0, 0, ["a", "b"])
    step.submit(Batch(win, {win.partition: win.end}))
    deadline = time.monotonic() + 20
    try:
        with pytest.raises(InsertWorkerError) as caught:
            while time.monotonic() < deadline:
                step.poll()
                time.sleep(0.05)
    finally:
        step.terminate()
    assert isinstance(caught.value.__cause__, UnexpectedInsertError)
    assert writer.attempts == UNEXPECTED_ATTEMPTS and after.batches == []  # nothing handed on to commit


class PartsWriter(WindowWriter):
    """A cluster writer whose parts are (month, shard) of the window's rows by parity, and whose part
    writes are recorded; shard 1 fails with an outage the first ``down`` times (pure: no connection)."""

    def __init__(self, down: int) -> None:
        super().__init__(ClickHouseAddress("127.0.0.1", 1, "db", cluster="c"), SinkStats())
        self.down = down
        self.written: list[tuple[int, int]] = []

    def _parts(self, columns: object) -> list[tuple[tuple[int, int], list[int] | None]]:
        return [((202601, 0), [0, 2]), ((202601, 1), [1, 3])]

    def _write_part(
        self, window: PartitionWindow, part: tuple[int, int], indices: list[int] | None
    ) -> list[tuple[int, Exception]]:
        if part[1] == 1 and self.down > 0:
            self.down -= 1
            raise NetworkError("shard 2 down")
        self.written.append(part)
        return [(2, ValueError("bad row"))] if part[1] == 0 else []


def test_a_retry_writes_only_the_parts_missing_and_keeps_the_refused_rows() -> None:
    writer = PartsWriter(down=2)
    health, stop = ClickHouseHealth(SinkStats()), threading.Event()
    bad = write_with_retry(writer, window(0, 0, ["a", "b", "c", "d"]), health, stop, backoff=0.001)
    assert writer.written == [(202601, 0), (202601, 1)]  # shard 1's part once, though tried 3 times
    assert bad is not None and [row for row, _ in bad] == [2]  # refused in the first attempt, kept


def test_an_outage_of_one_shard_still_writes_the_others_then_raises() -> None:
    writer = PartsWriter(down=1)
    progress: dict[tuple[int, int], list[tuple[int, Exception]]] = {}
    with pytest.raises(NetworkError):
        writer.write(window(0, 0, ["a", "b", "c", "d"]), progress)
    assert list(progress) == [(202601, 0)]
    assert writer.write(window(0, 0, ["a", "b", "c", "d"]), progress) == [(2, progress[(202601, 0)][0][1])]
    assert writer.written == [(202601, 0), (202601, 1)]
