"""Result batches: what the processor encodes is, row by row, exactly the per-client results
(``build_results``), and the sink's fast batch path gives the rows the model-checked path gives."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from processors.processor.collect import MAX_BATCH_CLIENTS, compute_columns, encode_results, partition_runs
from processors.processor.compute import COLUMNAR, summary
from processors.processor.subsystems.simulated import default_subsystems
from processors.sink.batch_columns import batch_columns
from processors.sink.result_rows import decode_rows, row_of
from schemas.codec import CodecError
from schemas.result_batch import encode_batch, expand_batch, is_batch
from tests.oracles import build_results, columns_rows, fetch_all, rows_of


def requests(n: int) -> list[dict[str, Any]]:
    return [
        {
            "v": 1,
            "run_id": f"run-{i % 3}",
            "client_id": f'c"{i},%s\\é, x',  # JSON escapes, commas and a % sign
            "requested_at_ms": 1_700_000_000_000 + i,
            "attempt": i % 4,
            "deadline_ms": None,
        }
        for i in range(n)
    ]


def expand_all(encoded: list[Any]) -> list[dict[str, Any]]:
    return [row for batch in encoded for row in expand_batch(orjson.loads(batch.value))]


def test_batches_are_the_per_client_results() -> None:
    reqs = requests(700)
    partitions = [i // 100 % 3 for i in range(700)]  # runs of 100 from partitions 0, 1, 2, 0, ...
    columns = fetch_all(default_subsystems(), reqs, 128)
    encoded, partial = encode_results(reqs, partitions, columns, summary, 1_700_000_999_999)
    assert partial == 0
    assert [(b.partition, b.clients) for b in encoded] == [(i % 3, 100) for i in range(7)]
    assert expand_all(encoded) == build_results(reqs, columns, summary, 1_700_000_999_999)
    decoded = decode_rows([b.value for b in encoded])
    assert decoded.bad == [] and decoded.counts == [100] * 7
    assert decoded.positions == list(range(100)) * 7
    assert rows_of(decoded) == [row_of(r) for r in build_results(reqs, columns, summary, 1_700_000_999_999)]


def test_missing_values_make_partial_rows() -> None:
    reqs = [r | {"run_id": "one"} for r in requests(10)]
    columns = fetch_all(default_subsystems(), reqs, 4)
    columns["uptime"][3] = None
    encoded, partial = encode_results(reqs, [0] * 10, columns, summary, 5)
    assert partial == 1
    assert expand_all(encoded) == build_results(reqs, columns, summary, 5)
    decoded = decode_rows([b.value for b in encoded])  # declined by the fast path, checked row by row
    assert decoded.bad == [] and rows_of(decoded) == [
        row_of(r) for r in build_results(reqs, columns, summary, 5)
    ]
    assert rows_of(decoded)[3][5] == "partial" and rows_of(decoded)[3][8] == ["uptime"]


def test_partition_runs_split_at_partition_changes_and_the_size_cap() -> None:
    assert partition_runs([]) == []
    assert partition_runs([1, 1, 2, 2, 2, 1]) == [(0, 2), (2, 5), (5, 6)]
    assert partition_runs([0] * 5, limit=2) == [(0, 2), (2, 4), (4, 5)]
    assert partition_runs([0] * (MAX_BATCH_CLIENTS + 1))[-1] == (MAX_BATCH_CLIENTS, MAX_BATCH_CLIENTS + 1)


def test_columnar_summary_is_summary() -> None:
    columns = [[1.5, -2.0, 7.0], [3.25, 0.0, 7.0], [9.0, 1.0, -7.5]]
    twin = COLUMNAR[summary](columns)
    for i in range(3):
        row = {f"m{j}": columns[j][i] for j in range(3)}
        assert {k: v[i] for k, v in twin.items()} == summary(row)


def test_compute_columns_per_client_when_values_are_missing() -> None:
    computed = compute_columns({"a": [1.0, None], "b": [3.0, 4.0]}, summary, 2)
    assert computed["count"] == [2.0, 1.0] and computed["total"] == [4.0, 4.0]
    assert compute_columns({}, summary, 2)["count"] == [0.0, 0.0]


def test_no_requests() -> None:
    assert encode_results([], [], {"uptime": []}, summary, 1) == ([], 0)
    with pytest.raises(CodecError):
        encode_batch([], 1, {}, {})


def batch(**changes: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "v": 1,
        "kind": "result_batch",
        "collected_at_ms": 1_700_000_001_000,
        "run_id": ["r1", "r1"],
        "client_id": ["a", "b"],
        "requested_at_ms": [1_700_000_000_000, 1_700_000_000_000],
        "attempt": [0, 1],
        "metric_names": ["x", "y"],
        "metrics": [[1.5, 2], [3.0, -4.25]],
        "computed_names": ["sum"],
        "computed": [[4.5, -2.25]],
    }
    obj.update(changes)
    return obj


def test_fast_batch_rows_are_the_model_checked_rows() -> None:
    columns = batch_columns(batch(), set())
    assert columns is not None
    rows = columns_rows(columns, range(len(columns[0])))
    assert rows == [row_of(r) for r in expand_batch(batch())]
    assert rows[1][6:8] == (["x", "y"], [2, -4.25]) and rows[1][9:11] == (["sum"], [-2.25])


NOT_NUMBERS: list[Any] = [None, True, False, "1.5", [1.0], {"a": 1.0}, "", 0]


@pytest.mark.parametrize("value", NOT_NUMBERS)
def test_the_number_check_declines_anything_but_numbers(value: Any) -> None:
    obj = batch(metrics=[[1.5, value], [3.0, -4.25]])
    columns = batch_columns(obj, set())
    assert (columns is not None) == (value == 0 and type(value) is int)
    decoded = decode_rows([orjson.dumps(obj)])
    assert len(rows_of(decoded)) + len(decoded.bad) >= 1  # declined batches are checked row by row


WHOLE_BATCH_BAD: list[dict[str, Any]] = [
    {"client_id": []},
    {"run_id": ["r1"]},
    {"attempt": [0]},
    {"metrics": [[1.5, 2]]},
    {"metric_names": ["x", "x"]},
    {"metrics": [[1.5], [3.0, 1.0]]},
    {"computed": [["4.5", 1.0]]},
    {"collected_at_ms": -1},
    {"v": 2},
    {"extra": 1},
]


@pytest.mark.parametrize("changes", WHOLE_BATCH_BAD)
def test_a_broken_batch_is_one_bad_record(changes: dict[str, Any]) -> None:
    obj = batch(**changes)
    assert batch_columns(obj, set()) is None
    with pytest.raises(CodecError):
        expand_batch(obj)
    decoded = decode_rows([orjson.dumps(obj)])
    assert rows_of(decoded) == [] and decoded.counts == [0]
    assert [(b.index, b.position) for b in decoded.bad] == [(0, None)]


ROW_BAD: list[dict[str, Any]] = [
    {"client_id": ["a", ""]},
    {"client_id": ["a", "tab\there"]},
    {"client_id": ["a", "x" * 129]},
    {"run_id": ["r1", "-bad"]},
    {"requested_at_ms": [1, -1]},
    {"requested_at_ms": [1, 253402300800000]},
    {"attempt": [0, 1001]},
]


@pytest.mark.parametrize("changes", ROW_BAD)
def test_a_bad_row_is_dead_lettered_alone(changes: dict[str, Any]) -> None:
    obj = batch(**changes)
    assert is_batch(obj) and batch_columns(obj, set()) is None
    decoded = decode_rows([orjson.dumps(obj)])
    assert [r[1] for r in rows_of(decoded)] == ["a"] and decoded.counts == [1] and decoded.positions == [0]
    (bad,) = decoded.bad
    assert (bad.index, bad.position) == (0, 1)
    assert bad.original is not None and orjson.loads(bad.original)["client_id"] == obj["client_id"][1]
