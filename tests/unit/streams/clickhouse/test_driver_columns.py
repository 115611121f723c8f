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
