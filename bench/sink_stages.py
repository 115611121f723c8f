"""bench/sink_stages: the sink's CPU per row, stage by stage, without Kafka or ClickHouse.

Builds N results as the processor's result batches (bench/sink's ``build_rows``), then measures the
thread CPU (best of 3) of:

1. ``orjson.loads`` of the records;
2. ``decode_rows`` in consumed batches of 32 records (the sink's default);
3. the consumer thread's whole chain: ``ResultDecoder`` and ``WindowStep`` (segments, windows, groups)
   with fake messages over 8 partitions and a next step that takes every group;
4. clickhouse-driver writing one insert of all N rows (every column through the driver's column
   writers, into a socket writer that discards the bytes), column by column.

Usage: python -m bench.sink_stages [N] (default 200,000).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import orjson
from clickhouse_driver.bufferedwriter import BufferedSocketWriter
from clickhouse_driver.columns.service import write_column

from bench.machine import machine_line
from bench.sink import build_rows
from processors.sink.columns import COLUMN_NAMES, ResultColumns, empty_columns
from processors.sink.insert import SinkStats
from processors.sink.result_rows import decode_rows
from processors.sink.service import tune_for_throughput
from processors.sink.steps import ResultDeadLetters, ResultDecoder, WindowStep
from processors.sink.windowing import WindowLimits, WindowRows
from schemas.ddl import OPTIONAL_RESULT_COLUMNS, RESULT_COLUMNS
from streams.steps.strategy import Batch

CONSUMED = 32  # records per consume (KCOLLECT_SINK_CONSUME_BATCH's default)


def best_cpu(run: Callable[[], object], repeats: int = 3) -> float:
    """The least thread CPU seconds of ``repeats`` calls of ``run``."""
    best = float("inf")
    for _ in range(repeats):
        started = time.thread_time()
        run()
        best = min(best, time.thread_time() - started)
    return best


class Message:
    """What the decoder reads of a consumed message."""

    __slots__ = ("_offset", "_partition", "_value")

    def __init__(self, partition: int, offset: int, value: bytes) -> None:
        self._partition, self._offset, self._value = partition, offset, value

    def topic(self) -> str:
        return "bench.results"

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes:
        return self._value


class TakeAll:
    """A next step that takes every group and counts its rows."""

    def __init__(self) -> None:
        self.rows = 0

    def submit(self, batch: Batch[WindowRows]) -> None:
        self.rows += batch.payload.count

    def poll(self) -> None:
        pass

    def join(self, timeout: float | None = None) -> None:
        pass

    def close(self) -> None:
        pass

    def terminate(self) -> None:
        pass


def consumer_chain(messages: list[Message], n: int) -> None:
    """Decode and window every message, as the sink's consumer thread does."""
    stats = SinkStats()
    taken = TakeAll()
    step = WindowStep(WindowLimits(100_000, 64 << 20, 1.0, 10_000, 0.1), taken, stats)
    decoder = ResultDecoder(ResultDeadLetters(None, "dlq", stats), stats)  # type: ignore[arg-type]
    for start in range(0, len(messages), CONSUMED):
        step.submit(decoder.decode(Batch(messages[start : start + CONSUMED], {})))  # type: ignore[arg-type]
    step.join()
    assert taken.rows == n, taken.rows


class Discard:
    def sendall(self, data: bytes) -> None:
        pass


def driver_context() -> Any:
    context = type("Context", (), {})()
    context.client_settings = {
        "strings_as_bytes": False,
        "strings_encoding": "utf-8",
        "use_numpy": False,
        "input_format_null_as_default": False,
        "low_cardinality_as_string": False,
    }
    context.server_info = None
    return context


def write_one(context: Any, name: str, column: list[Any]) -> None:
    buf = BufferedSocketWriter(Discard(), 1 << 20)
    write_column(context, name, dict(RESULT_COLUMNS)[name], column, buf, types_check=False)
    buf.flush()


def main() -> None:
    import streams.clickhouse.client  # noqa: F401  (installs driver_columns)

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    batches = build_rows(n, "bench-stages")
    values = [b.value for b in batches]
    offsets: dict[int, int] = {}
    messages = []
    for b in batches:
        offsets[b.partition] = offsets.get(b.partition, -1) + 1
        messages.append(Message(b.partition, offsets[b.partition], b.value))
    tune_for_throughput()
    print(f"machine: {machine_line()}; {n:,} rows in {len(values)} result batches")

    def per_row(seconds: float) -> str:
        return f"{seconds * 1e6 / n:.3f} µs per row"

    print("orjson.loads:", per_row(best_cpu(lambda: [orjson.loads(v) for v in values])))
    decoded = [decode_rows(values[i : i + CONSUMED]) for i in range(0, len(values), CONSUMED)]
    print(
        "decode_rows:",
        per_row(
            best_cpu(lambda: [decode_rows(values[i : i + CONSUMED]) for i in range(0, len(values), CONSUMED)])
        ),
    )
    print(
        "consumer thread (decode, segments, windows, groups):",
        per_row(best_cpu(lambda: consumer_chain(messages, n))),
    )
    columns: ResultColumns = empty_columns()
    for part in decoded:
        for column, more in zip(columns, part.columns, strict=True):
            column.extend(more)
    context = driver_context()
    total = 0.0
    for name, column in zip(COLUMN_NAMES, columns, strict=True):
        if name in OPTIONAL_RESULT_COLUMNS:
            continue
        seconds = best_cpu(lambda: write_one(context, name, column))  # noqa: B023
        total += seconds
        print(f"  driver writes {name}: {per_row(seconds)}")
    print("driver writes one insert of every row:", per_row(total))


if __name__ == "__main__":
    main()
