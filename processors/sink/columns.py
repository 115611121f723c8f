"""Rows to the columns of ``client_results``, in ``schemas.ddl.RESULT_COLUMNS`` order, and the split of a
window by ClickHouse partition (month of ``requested_at``, UTC).

The sink's ``ResultColumns`` hold one list per column in that order (``split_columns_by_month``,
``take``; see ``processors.sink.result_rows``): the sink decodes, windows and inserts columns, never a
tuple per row.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Sequence
from typing import Any, TypeVar

from schemas.ddl import OPTIONAL_RESULT_COLUMNS, RESULT_COLUMNS
from streams.clickhouse.driver_columns import FloatRows, expand_float_rows

T = TypeVar("T")
ResultColumns = list[list[Any]]  # one list per column of ``RESULT_COLUMNS``, every list one value per row
COLUMN_NAMES: tuple[str, ...] = tuple(name for name, _ in RESULT_COLUMNS)
COLUMN_COUNT = len(COLUMN_NAMES)
RUN_ID, CLIENT_ID = COLUMN_NAMES.index("run_id"), COLUMN_NAMES.index("client_id")
REQUESTED_AT = COLUMN_NAMES.index("requested_at")
VALUE_COLUMNS = (COLUMN_NAMES.index("metric_values"), COLUMN_NAMES.index("computed_values"))
OPTIONAL = tuple(COLUMN_NAMES.index(name) for name in sorted(OPTIONAL_RESULT_COLUMNS))
_IN_ORDER = operator.itemgetter(*COLUMN_NAMES)


def in_column_order(values: dict[str, T]) -> tuple[T, ...]:
    """``values`` named by column, in ``RESULT_COLUMNS`` order: one row (a value per column) or the
    columns of many rows (a list per column). Every column must be named, and nothing else.

    The one place a ``client_results`` row is put in order: every path that makes rows names them.
    """
    try:
        if len(values) == COLUMN_COUNT:
            return _IN_ORDER(values)  # type: ignore[no-any-return]
    except KeyError:
        pass
    missing, unknown = sorted(set(COLUMN_NAMES) - set(values)), sorted(set(values) - set(COLUMN_NAMES))
    raise ValueError(f"client_results columns: missing {missing}, unknown {unknown}")


def month_of(epoch_ms: int) -> int:
    """``toYYYYMM`` of an epoch-millisecond time in UTC (the table's partition key), e.g. 202611."""
    try:
        tm = time.gmtime(epoch_ms // 1000)
    except (OverflowError, OSError, ValueError):
        return 0
    return tm.tm_year * 100 + tm.tm_mon


def empty_columns() -> ResultColumns:
    """One empty list per column of ``client_results``."""
    return [[] for _ in range(COLUMN_COUNT)]


def take(columns: ResultColumns, indices: list[int], positions: Sequence[int]) -> ResultColumns:
    """The rows at ``indices`` of ``columns``, still as columns; ``positions`` holds each row's position
    in its record, so that the value columns' ``FloatRows`` (which stand for all rows of a result batch,
    ``processors.sink.batch_columns``) become the picked rows' own values."""
    taken = [[column[i] for i in indices] for column in columns]
    for index in VALUE_COLUMNS:
        if index < len(taken) and FloatRows in set(map(type, taken[index])):
            taken[index] = expand_float_rows(taken[index], [positions[i] for i in indices])
    return taken


def split_columns_by_month(columns: ResultColumns) -> list[tuple[int, list[int] | None]]:
    """(month, row indices) per ClickHouse partition, in first-seen order; indices None = every row.

    ``requested_at`` is in epoch seconds. Rows of one run share it, so nearly every window is one month
    and costs one dictionary lookup per row here.
    """
    stamps = columns[REQUESTED_AT]
    months = {stamp: month_of(stamp * 1000) for stamp in set(stamps)}
    if len(set(months.values())) <= 1:
        return [(next(iter(months.values()), 0), None)]
    groups: dict[int, list[int]] = {}
    for index, stamp in enumerate(stamps):
        groups.setdefault(months[stamp], []).append(index)
    return list(groups.items())
