"""The one place where kcollect changes clickhouse-driver: DateTime columns of epoch seconds skip a loop.

The driver's ``DateTimeColumn`` converts every value with a Python loop before writing (``isinstance``
per value, then an assignment back into the list), even when every value already is an ``int`` of
epoch seconds, which it then writes unchanged. The sink's rows always hold epoch seconds, and for two
DateTime columns that loop was ~0.8 µs per row of the sink's single Python thread (cProfile of 700k
rows: ``prepare_items`` plus ``before_write_items``). ``prepare_epoch_items`` checks the whole list
at once in C (the type of each value is ``int``) and hands such a list straight to the writer; any
other list (datetimes, ``None`` in a Nullable column, bools) goes through the driver's own code, so the
bytes written are the driver's in every case (tests/unit/test_clickhouse_columns.py compares them).

``install()`` runs when ``streams.clickhouse`` is imported. It sets ``prepare_items`` on the driver's
``DateTimeColumn`` (which inherits it from ``Column`` and does not define its own); ``DateTime64``
inherits the change, and its loop also leaves plain ints as they are.
"""

from __future__ import annotations

from typing import Any

from clickhouse_driver.columns.base import Column
from clickhouse_driver.columns.datetimecolumn import DateTimeColumn

_INTS = frozenset((int,))


def prepare_epoch_items(column: Any, items: list[Any]) -> list[Any]:
    """``Column.prepare_items``, minus the per-value loop for a list of plain ints (epoch seconds)."""
    if not column.nullable and _INTS.issuperset(map(type, items)):
        return items  # the driver's loop would leave every value as it is
    prepared: list[Any] = Column.prepare_items(column, items)
    return prepared


def install() -> None:
    """Make the driver's DateTime columns use ``prepare_epoch_items`` (idempotent)."""
    DateTimeColumn.prepare_items = prepare_epoch_items
