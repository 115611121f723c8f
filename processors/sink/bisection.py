"""Bisect a batch the server refuses because of its data, so one bad row cannot block a partition.

Pure: ``insert`` is any callable taking a list of row indices. A data error (``is_data_error``)
splits the rows in halves and tries each; a single row that still fails is returned as bad with its
error. Any other error (an outage) propagates at once: retrying it is the caller's job, and the halves
already inserted are inserted again then (harmless: the table replaces duplicates, and newer servers
drop them by deduplication token). One bad row in n costs about 2·log2(n) inserts.
"""

from __future__ import annotations

from collections.abc import Callable

Insert = Callable[[list[int]], None]


def insert_bisecting(
    indices: list[int], insert: Insert, is_data_error: Callable[[BaseException], bool]
) -> list[tuple[int, Exception]]:
    """Insert ``indices``; returns (index, error) for each row that cannot be inserted on its own."""
    if not indices:
        return []
    try:
        insert(indices)
        return []
    except Exception as exc:
        if not is_data_error(exc):
            raise
        if len(indices) == 1:
            return [(indices[0], exc)]
    middle = len(indices) // 2
    return insert_bisecting(indices[:middle], insert, is_data_error) + insert_bisecting(
        indices[middle:], insert, is_data_error
    )
