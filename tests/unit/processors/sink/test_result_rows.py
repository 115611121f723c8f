"""The sink's decoder (processors.sink.result_rows): row tuples in RESULT_COLUMNS order, and a fast check
that never accepts what the ClientResult model refuses."""

from __future__ import annotations

import calendar
from typing import Any

import orjson
import pytest

from processors.sink.columns import empty_columns, split_columns_by_month, take
from processors.sink.result_rows import decode_rows, fast_row, row_of
from schemas.codec import CodecError, decode
from schemas.ddl import RESULT_COLUMNS, result_version
from schemas.models import ClientResult
from tests.oracles import rows_of, to_columns

JAN = calendar.timegm((2026, 1, 31, 23, 59, 59)) * 1000
FEB = calendar.timegm((2026, 2, 1, 0, 0, 0)) * 1000


def result(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "v": 1,
        "run_id": "run-1",
        "client_id": "c1",
        "requested_at_ms": JAN,
        "attempt": 2,
        "collected_at_ms": JAN + 1999,
        "status": "ok",
        "metrics": {"a": 1.5, "b": 2},
        "missing": [],
        "computed": {"count": 2.0},
    }
    record.update(changes)
    return record


def test_row_matches_to_columns_of_the_dict() -> None:
    records = [result(), result(client_id="c2", status="partial", missing=["b"], metrics={"a": 0.25})]
    decoded = decode_rows([orjson.dumps(r) for r in records])
    rows = rows_of(decoded)
    assert decoded.bad == [] and decoded.counts == [1, 1]
    assert decoded.columns == to_columns(records)
    assert len(rows[0]) == len(RESULT_COLUMNS)


def test_defaults_of_absent_optional_fields() -> None:
    record = result()
    del record["attempt"], record["missing"]
    (row,) = rows_of(decode_rows([orjson.dumps(record)]))
    assert row[4] == 0 and row[8] == []
    assert row[13] == result_version(0, record["status"] == "ok", record["collected_at_ms"])


def test_metrics_that_are_not_numbers_are_stored_as_json_text() -> None:
    metrics = {"a": 1.5, "os": "linux", "up": True, "ver": [1, "rc2"], "flags": {"x": False}, "n": 3}
    record = result(metrics=metrics)
    decoded = decode_rows([orjson.dumps(record)])
    (row,) = rows_of(decoded)
    assert decoded.bad == []
    assert row[6:8] == (["a", "n"], [1.5, 3])
    assert row[11] == ["os", "up", "ver", "flags"]
    assert [orjson.loads(v) for v in row[12]] == ["linux", True, [1.0, "rc2"], {"x": False}]
    assert decoded.columns == to_columns([ClientResult.model_validate(record).model_dump()])


BAD_CHANGES: list[dict[str, Any]] = [
    {"v": 2},
    {"run_id": "-starts-with-sign"},
    {"run_id": ["x"]},
    {"run_id": 7},
    {"client_id": ""},
    {"client_id": "x" * 129},
    {"client_id": "tab\there"},
    {"client_id": None},
    {"requested_at_ms": -1},
    {"requested_at_ms": 253402300800000},
    {"requested_at_ms": "1"},
    {"requested_at_ms": True},
    {"collected_at_ms": 1.5},
    {"attempt": 1001},
    {"attempt": -1},
    {"status": "failed"},
    {"status": ["ok"]},
    {"status": {"a": 1}},
    {"metrics": {"cpu": [[1.0]]}},  # text metrics are flat: a list of lists is refused
    {"metrics": {"cpu": {"a": {"b": 1}}}},
    {"metrics": {"cpu": None}},
    {"metrics": [1.0]},
    {"computed": {"x": {"y": 1.0}}},
    {"missing": "cpu"},
    {"missing": [1]},
    {"extra": 1},
]


@pytest.mark.parametrize("changes", BAD_CHANGES)
def test_invalid_results_are_refused_like_the_model(changes: dict[str, Any]) -> None:
    data = orjson.dumps(result(**changes))
    with pytest.raises(CodecError):
        decode(ClientResult, data)
    decoded = decode_rows([data])
    assert rows_of(decoded) == [] and [b.index for b in decoded.bad] == [0] and decoded.counts == [0]
    assert fast_row(orjson.loads(data), set()) is None


@pytest.mark.parametrize("data", [b"", None, b"not json", b"\xff\xfe", b"[1, 2]", b'"x"', b"{}", b'{"v":1}'])
def test_undecodable_records(data: bytes | None) -> None:
    decoded = decode_rows([orjson.dumps(result()), data, orjson.dumps(result(client_id="c9"))])
    assert [r[1] for r in rows_of(decoded)] == ["c1", "c9"] and decoded.counts == [1, 0, 1]
    assert [(b.index, b.position) for b in decoded.bad] == [(1, None)]
    assert decoded.bad[0].error.reason in CodecError.REASONS


def test_valid_but_unusual_records_go_through_the_model() -> None:
    # Keys in another order with an explicit default: the fast check declines nothing it should accept.
    record = {"computed": {}, "metrics": {}, "status": "partial", "collected_at_ms": 0, "requested_at_ms": 0}
    record |= {"client_id": "ü-client", "run_id": "r:1@x", "v": 1}
    decoded = decode_rows([orjson.dumps(record)])
    assert decoded.bad == [] and rows_of(decoded)[0][:2] == ("r:1@x", "ü-client")
    assert row_of(record) == rows_of(decoded)[0]
    # The model takes v as true or 1.0 (JSON equality with the literal 1); so does the decoder.
    for version in (True, 1.0):
        decoded = decode_rows([orjson.dumps(result(v=version))])
        assert decoded.bad == [] and rows_of(decoded) == [row_of(result(v=version))]


def test_split_columns_by_month() -> None:
    records = [result(requested_at_ms=t) for t in (FEB, JAN, FEB + 5000, JAN - 1000)]
    decoded = decode_rows([orjson.dumps(r) for r in records])
    columns = decoded.columns
    assert split_columns_by_month(columns) == [(202602, [0, 2]), (202601, [1, 3])]
    assert split_columns_by_month(take(columns, [0], decoded.positions)) == [(202602, None)]
    assert split_columns_by_month(empty_columns()) == [(0, None)]
    assert take(columns, [3, 1], decoded.positions) == to_columns([records[3], records[1]])
    assert empty_columns() == [[] for _ in RESULT_COLUMNS]
