"""streams.clickhouse.driver_columns writes exactly the driver's bytes, with or without its per-value loop."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pytest
from clickhouse_driver.columns.base import Column
from clickhouse_driver.columns.datetimecolumn import DateTimeColumn
from clickhouse_driver.columns.service import get_column_by_spec
from clickhouse_driver.context import Context

from streams.clickhouse import driver_columns

UTC_2026 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CASES = [
    [1795456259, 0, 4294967295],
    [UTC_2026, UTC_2026],
    [1795456259, UTC_2026],  # mixed: the driver's loop converts the datetime
    [True, 5],  # a bool is not a plain int: the driver's code decides
    [],
]


def _context() -> Context:
    context = Context()
    context.client_settings = {"strings_as_bytes": False, "use_numpy": False}
    context.settings = {}
    return context


def _written(spec: str, items: list[Any]) -> bytes:
    column = get_column_by_spec(spec, {"context": _context()})
    buf = io.BytesIO()
    column.write_data(list(items), buf)
    return buf.getvalue()


def _driver_and_ours(spec: str, items: list[Any], monkeypatch: pytest.MonkeyPatch) -> tuple[bytes, bytes]:
    with monkeypatch.context() as patch:
        patch.setattr(DateTimeColumn, "prepare_items", Column.prepare_items)  # what it inherits
        driver = _written(spec, items)
    with monkeypatch.context() as patch:
        patch.setattr(DateTimeColumn, "prepare_items", driver_columns.prepare_epoch_items)
        ours = _written(spec, items)
    return driver, ours


@pytest.mark.parametrize("items", CASES)
@pytest.mark.parametrize("spec", ["DateTime('UTC')", "DateTime('Europe/Paris')", "DateTime64(3, 'UTC')"])
def test_same_bytes_as_the_driver(items: list[Any], spec: str, monkeypatch: pytest.MonkeyPatch) -> None:
    driver, ours = _driver_and_ours(spec, items, monkeypatch)
    assert ours == driver


def test_nullable_values_go_through_the_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    for items in ([1795456259, None], [7, 8]):
        driver, ours = _driver_and_ours("Nullable(DateTime('UTC'))", items, monkeypatch)
        assert ours == driver


def test_ints_skip_the_loop() -> None:
    items = [1795456259, 1795456260]
    column = get_column_by_spec("DateTime('UTC')", {"context": _context()})
    assert driver_columns.prepare_epoch_items(column, items) is items


def test_installed_on_import() -> None:
    import streams.clickhouse.client  # noqa: F401  (installs on import)

    assert DateTimeColumn.prepare_items is driver_columns.prepare_epoch_items


@pytest.mark.parametrize(
    ("columns", "n"),
    [
        ([[1, 2, 3], ["a", "b", "c"]], 10),  # one block: handed over as they are
        ([[1, 2, 3], ["a", "b", "c"]], 3),
        ([[1, 2, 3], ["a", "b", "c"]], 2),  # two blocks: the driver's own slicing
        ([[], []], 5),  # nothing to send: no block at all
        ([(1, 2), (3, 4)], 5),  # tuples: the driver's own path
    ],
)
def test_whole_column_chunks_yields_the_drivers_blocks(columns: list[Any], n: int) -> None:
    from clickhouse_driver.util.helpers import column_chunks

    ours = list(driver_columns.whole_column_chunks(columns, n))
    assert ours == list(column_chunks(columns, n))
    if len(ours) == 1 and all(type(c) is list for c in columns):
        assert all(a is b for a, b in zip(ours[0], columns, strict=True))  # no copy


def test_install_replaces_the_clients_column_chunks() -> None:
    import clickhouse_driver.client

    import streams.clickhouse.client  # noqa: F401  (installs on import)

    assert clickhouse_driver.client.column_chunks is driver_columns.whole_column_chunks


class _Collect:
    """The driver's buffered writer, kept in memory."""

    def __init__(self) -> None:
        from clickhouse_driver.bufferedwriter import BufferedWriter

        outer = self
        self.chunks: list[bytes] = []

        class Writer(BufferedWriter):  # type: ignore[misc]
            def write_into_stream(self) -> None:
                outer.chunks.append(bytes(self.buffer[: self.position]))
                self.position = 0

        self.buf = Writer(1 << 16)

    def value(self) -> bytes:
        self.buf.flush()
        return b"".join(self.chunks)


def _array_bytes(spec: str, rows: list[Any], ours: bool) -> bytes:
    from clickhouse_driver.columns.arraycolumn import ArrayColumn

    column = get_column_by_spec(spec, {"context": _context()})
    out = _Collect()
    if ours:
        driver_columns.write_array_data(column, rows, out.buf)
    else:
        driver_columns._DRIVER_ARRAY_WRITE(column, rows, out.buf)
    assert isinstance(column, ArrayColumn)
    return out.value()


SHARED = ["cpu", "mém", "x" * 200]
ARRAY_CASES = [
    ("Array(String)", [SHARED] * 5 + [["a"]] * 3),
    ("Array(String)", [SHARED, ["a", "b"], ["c"], []]),  # nothing shared: the driver's writer
    ("Array(String)", [[]] * 4),
    ("Array(String)", []),
    ("Array(Float64)", [(1.5, 2, -3e300), (0.0,), (), (7.25, 8.0)]),
    ("Array(Float64)", [[1.0, "x"]]),  # not a number: the driver's code (and its error)
    ("Array(Array(Float64))", [[[1.0], [2.0, 3.0]]]),
    ("Array(Nullable(Float64))", [[1.0, None]]),
    ("Array(LowCardinality(String))", [SHARED] * 3 + [["a", "cpu"]] * 5),
    ("Array(LowCardinality(String))", [[f"n{i}" for i in range(300)]] * 4),  # UInt16 keys
    ("Array(LowCardinality(String))", [[]] * 4),
    ("Array(LowCardinality(String))", [SHARED, ["b"], ["c"]]),  # nothing shared: the driver's code
    ("Array(LowCardinality(Nullable(String)))", [["a", None]] * 4),
]


@pytest.mark.parametrize(("spec", "rows"), ARRAY_CASES)
def test_arrays_same_bytes_as_the_driver(spec: str, rows: list[Any]) -> None:
    try:
        driver = _array_bytes(spec, [list(r) if isinstance(r, list) else r for r in rows], ours=False)
    except Exception as exc:
        with pytest.raises(type(exc)):
            _array_bytes(spec, rows, ours=True)
        return
    assert _array_bytes(spec, rows, ours=True) == driver


def test_strings_bytes_is_the_native_format() -> None:
    assert (
        driver_columns.strings_bytes(["", "a", "é" * 100]) == b"\x00\x01a" + b"\xc8\x01" + "é".encode() * 100
    )


@pytest.mark.parametrize(
    ("spec", "rows"),
    [
        ("Array(String)", [SHARED] * 8),
        ("Array(LowCardinality(String))", [SHARED] * 8),
        ("Array(Float64)", [(1.0,)]),
    ],
)
def test_shared_rows_take_the_fast_path(spec: str, rows: list[Any]) -> None:
    column = get_column_by_spec(spec, {"context": _context()})
    assert driver_columns._leaf_bytes(column.nested_column, rows) is not None
