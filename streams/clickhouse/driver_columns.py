"""The one place where kcollect changes clickhouse-driver: DateTime columns of epoch seconds skip a loop,
and a columnar insert that fits in one block is not copied twice.

The driver's ``DateTimeColumn`` converts every value with a Python loop before writing (``isinstance``
per value, then an assignment back into the list), even when every value already is an ``int`` of
epoch seconds, which it then writes unchanged. The sink's rows always hold epoch seconds, and for two
DateTime columns that loop was ~0.8 µs per row of the sink's single Python thread (cProfile of 700k
rows: ``prepare_items`` plus ``before_write_items``). ``prepare_epoch_items`` checks the whole list
at once in C (the type of each value is ``int``) and hands such a list straight to the writer; any
other list (datetimes, ``None`` in a Nullable column, bools) goes through the driver's own code, so the
bytes written are the driver's in every case
(tests/unit/streams/clickhouse/test_driver_columns.py compares them).

A columnar insert goes through the driver's ``column_chunks``, which slices every column into blocks of
``insert_block_size`` rows (1,048,576) and copies each slice once more (``list(seq[i:i+n])``): two
copies of every column even when the whole insert is one block, as the sink's windows (≤ 100k rows)
always are; 0.2-0.3 µs per row of 10 columns. ``whole_column_chunks`` hands such columns over as they
are. The driver then converts values in place in the caller's lists where it converts at all
(Float32 rounding, Enum names, DateTime objects to seconds; none of these are in ``client_results``,
whose DateTime columns hold epoch seconds): callers must not rely on their lists staying unchanged.

``install()`` runs when ``streams.clickhouse.client`` is imported. It sets ``prepare_items`` on the driver's
``DateTimeColumn`` (which inherits it from ``Column`` and does not define its own); ``DateTime64``
inherits the change, and its loop also leaves plain ints as they are.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import clickhouse_driver.client
from clickhouse_driver.columns.base import Column
from clickhouse_driver.columns.datetimecolumn import DateTimeColumn
from clickhouse_driver.util.helpers import column_chunks

_INTS = frozenset((int,))


def prepare_epoch_items(column: Any, items: list[Any]) -> list[Any]:
    """``Column.prepare_items``, minus the per-value loop for a list of plain ints (epoch seconds)."""
    if not column.nullable and _INTS.issuperset(map(type, items)):
        return items  # the driver's loop would leave every value as it is
    prepared: list[Any] = Column.prepare_items(column, items)
    return prepared


def whole_column_chunks(columns: Sequence[Any], n: int) -> Iterator[list[Any]]:
    """The driver's ``column_chunks``, minus its two copies when every column is a list of ≤ n rows."""
    if all(type(column) is list and len(column) <= n for column in columns):
        if any(columns):
            yield list(columns)
        return
    yield from column_chunks(columns, n)


def install() -> None:
    """Make the driver's DateTime columns use ``prepare_epoch_items`` and its columnar inserts
    ``whole_column_chunks`` (idempotent)."""
    DateTimeColumn.prepare_items = prepare_epoch_items
    clickhouse_driver.client.column_chunks = whole_column_chunks
