"""Rows to ClickHouse columns (order = schemas.ddl.RESULT_COLUMNS) and the split by month."""

from __future__ import annotations

import calendar
from typing import Any

import orjson
import pytest

from processors.sink.columns import in_column_order, month_of, split_columns_by_month
from schemas.ddl import RESULT_COLUMNS, result_version
from tests.oracles import to_columns

JAN = calendar.timegm((2026, 1, 31, 23, 59, 59)) * 1000
FEB = calendar.timegm((2026, 2, 1, 0, 0, 0)) * 1000


def row(client_id: str, requested_at_ms: int = JAN, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "v": 1,
        "run_id": "run-1",
        "client_id": client_id,
        "requested_at_ms": requested_at_ms,
        "attempt": 2,
        "collected_at_ms": requested_at_ms + 1999,
        "status": "ok",
        "metrics": {"a": 1.5, "b": 2.0},
        "missing": [],
        "computed": {"count": 2.0},
    }
    base.update(fields)
    return base


def test_to_columns_in_result_columns_order() -> None:
    rows = [row("c1"), row("c2", status="partial", missing=["b"], metrics={"a": 0.25}, attempt=7)]
    columns = to_columns(rows)
    assert len(columns) == len(RESULT_COLUMNS)
    by_name = dict(zip((name for name, _ in RESULT_COLUMNS), columns, strict=True))
    assert by_name["run_id"] == ["run-1", "run-1"]
    assert by_name["client_id"] == ["c1", "c2"]
    assert by_name["requested_at"] == [JAN // 1000, JAN // 1000]
    assert by_name["collected_at"] == [(JAN + 1999) // 1000] * 2
    assert by_name["attempt"] == [2, 7]
    assert by_name["version"] == [result_version(2, True, JAN + 1999), result_version(7, False, JAN + 1999)]
    assert by_name["status"] == ["ok", "partial"]
    assert [orjson.loads(m) for m in by_name["metrics"]] == [{"a": 1.5, "b": 2.0}, {"a": 0.25}]
    assert all(isinstance(m, bytes) for m in by_name["metrics"])  # the driver writes bytes as they are
    assert by_name["missing"] == [[], ["b"]]
    assert [orjson.loads(c) for c in by_name["computed"]] == [{"count": 2.0}, {"count": 2.0}]


def test_to_columns_defaults_for_fast_path_rows() -> None:
    bare = row("c1")
    del bare["attempt"], bare["missing"]
    columns = dict(zip((name for name, _ in RESULT_COLUMNS), to_columns([bare]), strict=True))
    assert columns["attempt"] == [0]
    assert columns["version"] == [result_version(0, True, bare["collected_at_ms"])]
    assert columns["missing"] == [[]]


def test_to_columns_empty() -> None:
    assert to_columns([]) == [[] for _ in RESULT_COLUMNS]


def test_month_of() -> None:
    assert month_of(JAN) == 202601
    assert month_of(FEB) == 202602
    assert month_of(0) == 197001
    assert month_of(253402300799999) == 999912


def test_split_by_month_single_month() -> None:
    assert split_columns_by_month(to_columns([row("a"), row("b", JAN - 10_000)])) == [(202601, None)]


def test_split_by_month_empty() -> None:
    assert split_columns_by_month(to_columns([])) == [(0, None)]


def test_split_by_month_groups_in_first_seen_order() -> None:
    rows = [row("a", FEB), row("b", JAN), row("c", FEB + 5), row("d", JAN - 1)]
    assert split_columns_by_month(to_columns(rows)) == [(202602, [0, 2]), (202601, [1, 3])]


def test_in_column_order_names_every_column_and_nothing_else() -> None:
    names = [name for name, _ in RESULT_COLUMNS]
    assert in_column_order({name: i for i, name in enumerate(reversed(names))}) == tuple(
        range(len(names) - 1, -1, -1)
    )
    with pytest.raises(ValueError, match=r"missing \['version'\]"):
        in_column_order({name: 0 for name in names[:-1]})
    with pytest.raises(ValueError, match=r"unknown \['extra'\]"):
        in_column_order({**{name: 0 for name in names[:-1]}, "extra": 0})
