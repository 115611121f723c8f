"""streams.clickhouse.driver_columns writes exactly the driver's bytes, with or without its per-value loop."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pytest
from clickhouse_driver.columns.base import Column
from clickhouse_driver.columns.datetimecolumn import DateTimeColumn
from clickhouse_driver.columns.service import get_column_by_spec
from clickhouse_driver.columns.stringcolumn import String
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
        from clickhouse_driver.bufferedwriter import BufferedSocketWriter

        outer = self
        self.chunks: list[bytes] = []

        class Socket:  # what the driver's socket writer sends to, kept
            def sendall(self, data: bytes) -> None:
                outer.chunks.append(bytes(data))

        self.buf = BufferedSocketWriter(Socket(), 1 << 16)

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
    ("Array(String)", [SHARED] * 4 + [["a", "b", "c"]] * 2),  # one width: offsets in one progression
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


def _float_rows(columns: list[list[Any]]) -> driver_columns.FloatRows:
    rows = driver_columns.FloatRows.from_columns(columns, len(columns[0]) if columns else 2)
    assert rows is not None
    return rows


def test_float_rows_hold_a_batchs_values_row_major() -> None:
    block = _float_rows([[1.5, 2, -3e300], [0.0, 7.25, 8]])
    assert (block.count, block.width) == (3, 2)
    assert [block.row(i) for i in range(3)] == [(1.5, 0.0), (2.0, 7.25), (-3e300, 8.0)]
    with pytest.raises(IndexError):
        block.row(3)
    empty = _float_rows([])
    assert empty.row(1) == ()
    for bad in (None, "1.5", [1.0], {"a": 1}, 10**400):
        assert driver_columns.FloatRows.from_columns([[1.0, bad]], 2) is None
    assert driver_columns.FloatRows.from_columns([[1.0, 2.0, 3.0]], 2) is None  # not 2 values
    assert driver_columns.FloatRows.from_columns([[1.0], [2.0]], 2) is None
    ints = [2**63, -(2**53) - 1, 0]
    assert _float_rows([ints]).values.tolist() == [float(i) for i in ints]  # as array("d", ints)


def test_float_rows_runs_same_bytes_as_the_drivers_rows() -> None:
    first = _float_rows([[1.5, 2.0, 3.0], [4.0, 5.0, 6.0]])
    wide = _float_rows([[1.0], [2.0], [3.0]])
    nothing = _float_rows([])
    plain = [(9.5,), [], (1.0, 2.0)]
    rows = [first] * 3 + plain[:2] + [nothing] * 2 + [wide] + plain[2:]
    positions = [0, 1, 2, 0, 0, 0, 1, 0, 0]
    expected = driver_columns.expand_float_rows(rows, positions)
    assert expected[:3] == [(1.5, 4.0), (2.0, 5.0), (3.0, 6.0)] and expected[5:7] == [(), ()]
    driver = _array_bytes("Array(Float64)", [list(r) for r in expected], ours=False)
    assert len(driver) == 8 * len(rows) + 8 * 12  # offsets, then 12 values
    assert _array_bytes("Array(Float64)", rows, ours=True) == driver


def test_a_float_rows_must_stand_for_all_its_rows() -> None:
    block = _float_rows([[1.0, 2.0, 3.0]])
    for rows in ([block, block], [block, block, block, block], [block, (1.0,), block]):
        with pytest.raises(ValueError, match="not held by 3 consecutive rows"):
            _array_bytes("Array(Float64)", rows, ours=True)
    assert driver_columns.expand_float_rows([block, block], [2, 0]) == [(3.0,), (1.0,)]


class _Text(str):
    """A str subclass: equal to the str, not a plain str (the driver's writer decides)."""


STRING_CASES: list[list[Any]] = [
    ["run-1"] * 5,  # one value in every row: written at once
    ["mém"] * 3,
    [""] * 4,
    ["x" * 200] * 2,
    ["only"],
    [],
    ["a", "b", "a"],  # distinct values: the driver's writer
    ["a", "a", "b"],
    ["a", _Text("a")],
    ["a", b"a"],
    [b"raw", b"raw"],
]


def _string_bytes(items: list[Any], ours: bool, encoding: str = "utf-8") -> bytes:
    column = String(encoding=encoding, context=_context())
    out = _Collect()
    write = driver_columns.write_string_items if ours else driver_columns._DRIVER_STRING_WRITE
    write(column, list(items), out.buf)
    return out.value()


@pytest.mark.parametrize("items", STRING_CASES)
@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
def test_string_columns_same_bytes_as_the_driver(items: list[Any], encoding: str) -> None:
    assert _string_bytes(items, True, encoding) == _string_bytes(items, False, encoding)


def test_a_string_column_of_one_value_skips_the_drivers_writer(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: Any) -> None:
        raise AssertionError("the driver's writer was called")

    monkeypatch.setattr(driver_columns, "_DRIVER_STRING_WRITE", refuse)
    assert _string_bytes(["r1"] * 3, True) == b"\x02r1" * 3
    with pytest.raises(AssertionError):
        _string_bytes(["r1", "r2"], True)


def test_a_value_the_encoding_cannot_hold_fails_as_in_the_driver() -> None:
    for ours in (False, True):
        with pytest.raises(UnicodeEncodeError):
            _string_bytes(["€"] * 2, ours, "latin-1")


def test_string_writer_installed_on_import() -> None:
    import streams.clickhouse.client  # noqa: F401  (installs on import)

    assert String.write_items is driver_columns.write_string_items


@pytest.mark.parametrize("widths", [[2, 2, 2], [3], [0, 0], [2, 3]])
def test_float_rows_of_one_width_same_bytes_as_the_drivers_rows(
    widths: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    blocks = [_float_rows([[float(w * 10 + i), -1.5] for i in range(w)]) for w in widths]
    rows = [block for block in blocks for _ in range(block.count)]
    positions = [p for block in blocks for p in range(block.count)]
    driver = _array_bytes(
        "Array(Float64)", [list(r) for r in driver_columns.expand_float_rows(rows, positions)], ours=False
    )
    assert _array_bytes("Array(Float64)", rows, ours=True) == driver
    progressions: list[tuple[int, int]] = []
    progression = driver_columns._progression
    monkeypatch.setattr(
        driver_columns, "_progression", lambda w, n: progressions.append((w, n)) or progression(w, n)
    )
    driver_columns._float_runs(rows)
    assert (progressions == [(widths[0], len(rows))]) == (len(set(widths)) == 1)
    assert progressions == [] or len(set(widths)) == 1


def test_float_rows_held_by_too_few_rows_are_refused() -> None:
    block = _float_rows([[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError):
        driver_columns._float_runs([block, block])
