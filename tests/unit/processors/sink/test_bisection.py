"""Bisecting a batch the server refuses for its data (processors.sink.bisection)."""

from __future__ import annotations

import pytest

from processors.sink.bisection import insert_bisecting


class DataError(Exception):
    pass


class Outage(Exception):
    pass


def is_data_error(exc: BaseException) -> bool:
    return isinstance(exc, DataError)


class Table:
    """Refuses any insert holding a bad index; records what was inserted."""

    def __init__(self, bad: set[int], outage_after: int | None = None) -> None:
        self.bad = bad
        self.rows: list[int] = []
        self.calls = 0
        self.outage_after = outage_after

    def insert(self, indices: list[int]) -> None:
        self.calls += 1
        if self.outage_after is not None and self.calls > self.outage_after:
            raise Outage("connection refused")
        if self.bad.intersection(indices):
            raise DataError(f"bad among {indices[0]}..{indices[-1]}")
        self.rows.extend(indices)


def test_clean_batch_is_one_insert() -> None:
    table = Table(set())
    assert insert_bisecting(list(range(1000)), table.insert, is_data_error) == []
    assert table.calls == 1 and table.rows == list(range(1000))


def test_one_bad_row_goes_out_and_the_rest_lands() -> None:
    table = Table({617})
    refused = insert_bisecting(list(range(1000)), table.insert, is_data_error)
    assert [index for index, _ in refused] == [617]
    assert isinstance(refused[0][1], DataError)
    assert sorted(table.rows) == [i for i in range(1000) if i != 617]
    assert table.calls <= 2 * 10 + 1  # about 2·log2(n)


def test_several_bad_rows() -> None:
    table = Table({0, 5, 6, 999})
    refused = insert_bisecting(list(range(1000)), table.insert, is_data_error)
    assert [index for index, _ in refused] == [0, 5, 6, 999]
    assert len(table.rows) == 996


def test_every_row_bad() -> None:
    table = Table(set(range(8)))
    assert [i for i, _ in insert_bisecting(list(range(8)), table.insert, is_data_error)] == list(range(8))


def test_empty() -> None:
    table = Table(set())
    assert insert_bisecting([], table.insert, is_data_error) == []
    assert table.calls == 0


def test_outage_is_not_bisected_but_raised() -> None:
    table = Table({3}, outage_after=1)
    with pytest.raises(Outage):
        insert_bisecting(list(range(10)), table.insert, is_data_error)
    assert table.calls == 2
