"""Rows to the columns of ``client_results``, in ``schemas.ddl.RESULT_COLUMNS`` order, and the split of a
window by ClickHouse partition (month of ``requested_at``, UTC).

Two shapes: ClientResult dicts (``to_columns``, ``split_by_month``) and the sink's ``ResultColumns``, one
list per column in that order (``split_columns_by_month``, ``take``; see ``processors.sink.result_rows``): the
sink decodes, windows and inserts columns, never a tuple per row.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from schemas.ddl import RESULT_COLUMNS

Record = dict[str, Any]
ResultColumns = list[list[Any]]  # one list per column of ``RESULT_COLUMNS``, every list one value per row
COLUMN_COUNT = len(RESULT_COLUMNS)
_NAMES = [name for name, _ in RESULT_COLUMNS]
RUN_ID, CLIENT_ID = _NAMES.index("run_id"), _NAMES.index("client_id")
REQUESTED_AT, MISSING = _NAMES.index("requested_at"), _NAMES.index("missing")


def to_columns(rows: list[Record]) -> list[list[Any]]:
    """One list per column; times go as epoch seconds (the DateTime columns' unit)."""
    dumps = orjson.dumps
    attempts = [r.get("attempt", 0) for r in rows]
    return [
        [r["run_id"] for r in rows],
        [r["client_id"] for r in rows],
        [r["requested_at_ms"] // 1000 for r in rows],
        [r["collected_at_ms"] // 1000 for r in rows],
        attempts,
        [r["status"] for r in rows],
        [dumps(r["metrics"]) for r in rows],
        [list(r.get("missing", ())) for r in rows],
        [dumps(r["computed"]) for r in rows],
        attempts,
    ]


def month_of(epoch_ms: int) -> int:
    """``toYYYYMM`` of an epoch-millisecond time in UTC (the table's partition key), e.g. 202611."""
    try:
        tm = time.gmtime(epoch_ms // 1000)
    except (OverflowError, OSError, ValueError):
        return 0
    return tm.tm_year * 100 + tm.tm_mon


def split_by_month(rows: list[Record]) -> list[tuple[int, list[int] | None]]:
    """(month, row indices) per ClickHouse partition, in first-seen order; indices None = every row.

    Rows of one run share ``requested_at``, so nearly every window is one month and costs one
    dictionary lookup per row here.
    """
    months = {stamp: month_of(stamp) for stamp in {r["requested_at_ms"] for r in rows}}
    if len(set(months.values())) <= 1:
        return [(next(iter(months.values()), 0), None)]
    groups: dict[int, list[int]] = {}
    for index, row in enumerate(rows):
        groups.setdefault(months[row["requested_at_ms"]], []).append(index)
    return list(groups.items())


def empty_columns() -> ResultColumns:
    """One empty list per column of ``client_results``."""
    return [[] for _ in range(COLUMN_COUNT)]


def take(columns: ResultColumns, indices: list[int]) -> ResultColumns:
    """The rows at ``indices`` of ``columns``, still as columns."""
    return [[column[i] for i in indices] for column in columns]


def split_columns_by_month(columns: ResultColumns) -> list[tuple[int, list[int] | None]]:
    """``split_by_month`` for the sink's columns (``requested_at`` in epoch seconds)."""
    stamps = columns[REQUESTED_AT]
    months = {stamp: month_of(stamp * 1000) for stamp in set(stamps)}
    if len(set(months.values())) <= 1:
        return [(next(iter(months.values()), 0), None)]
    groups: dict[int, list[int]] = {}
    for index, stamp in enumerate(stamps):
        groups.setdefault(months[stamp], []).append(index)
    return list(groups.items())
