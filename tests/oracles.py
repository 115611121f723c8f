"""Test oracles: the plain, per-client definitions the fast production paths are checked against.

None of this runs in a service: the processor encodes result batches from whole columns
(``processors.processor.collect.encode_results``) and the sink keeps rows as columns
(``processors.sink.result_rows.decode_rows``); these say, one client at a time, what they must equal.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from itertools import accumulate, repeat
from typing import Any

import orjson

from processors.processor.compute import ComputeFn
from processors.processor.fetcher import Outcome
from processors.processor.subsystems.protocol import MetricColumns, Subsystem
from processors.sink.columns import in_column_order
from processors.sink.result_rows import DecodedRows, Row
from schemas.codec import CodecError, _decode_batch
from schemas.ddl import result_version, shard_hash
from schemas.fast_checks import is_plain_result
from schemas.models import ClientResult
from schemas.result_batch import expand_batch
from streams.clickhouse.driver_columns import expand_float_rows

Record = dict[str, Any]


def fetch_all(subsystems: Sequence[Subsystem], requests: Sequence[Record], chunk: int) -> MetricColumns:
    """One column per metric over ``requests``, calling each subsystem once per ``chunk`` requests."""
    columns: MetricColumns = {}
    for start in range(0, len(requests), chunk):
        part = requests[start : start + chunk]
        for subsystem in subsystems:
            fetched = subsystem.fetch(part)
            for metric in subsystem.metrics:
                values = fetched.get(metric)
                columns.setdefault(metric, []).extend(values if values is not None else [None] * len(part))
    return columns


def build_results(
    requests: Sequence[Record], columns: MetricColumns, compute: ComputeFn, now_ms: int
) -> list[Record]:
    """Results for ``requests`` from fetched ``columns``; a client with missing values is ``partial``."""
    names = tuple(columns)
    complete = all(None not in column for column in columns.values())
    rows = zip(*columns.values(), strict=True) if names else repeat(())
    results: list[Record] = []
    append = results.append
    for request, row in zip(requests, rows, strict=False):  # rows is endless when there are no metrics
        metrics: dict[str, Any] = dict(zip(names, row, strict=True))
        missing = [] if complete else [name for name, value in metrics.items() if value is None]
        if missing:
            metrics = {name: value for name, value in metrics.items() if value is not None}
        append(
            {
                "v": 1,
                "run_id": request["run_id"],
                "client_id": request["client_id"],
                "requested_at_ms": request["requested_at_ms"],
                "attempt": request.get("attempt", 0),
                "collected_at_ms": now_ms,
                "status": "partial" if missing else "ok",
                "metrics": metrics,
                "missing": missing,
                "computed": compute(metrics),
            }
        )
    return results


def results_of(outcome: Outcome) -> list[Record]:
    """The results of an outcome's result batches as ClientResult dicts."""
    return [row for batch in outcome.encoded for row in expand_batch(orjson.loads(batch.value))]


def rows_of(decoded: DecodedRows) -> list[Row]:
    """The decoded rows as tuples in ``RESULT_COLUMNS`` order, arrays as lists (the fast path keeps a
    batch's values as one ``FloatRows`` per value column, expanded here; the driver writes both the
    same)."""
    return columns_rows(decoded.columns, decoded.positions)


def columns_rows(columns: Sequence[list[Any]], positions: Sequence[int]) -> list[Row]:
    """Rows of ``columns`` (each row at ``positions[k]`` of its record), ``FloatRows`` expanded."""
    expanded = [expand_float_rows(column, positions) for column in columns]
    return [as_lists(row) for row in zip(*expanded, strict=True)]


def as_lists(row: Sequence[Any]) -> Row:
    """A row with every tuple value (an array column's) as a list."""
    return tuple(list(value) if type(value) is tuple else value for value in row)


def decode_results(values: Sequence[bytes | None]) -> tuple[list[Record], list[tuple[int, CodecError]]]:
    """Decode a batch of ClientResult records: valid dicts in order, and (index, error) for each bad one."""
    return _decode_batch(ClientResult, values, is_plain_result)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def to_columns(rows: list[Record]) -> list[list[Any]]:
    """One list per column; times go as epoch seconds (the DateTime columns' unit)."""
    dumps = orjson.dumps
    attempts = [r.get("attempt", 0) for r in rows]
    columns = {
        "run_id": [r["run_id"] for r in rows],
        "client_id": [r["client_id"] for r in rows],
        "requested_at": [r["requested_at_ms"] // 1000 for r in rows],
        "collected_at": [r["collected_at_ms"] // 1000 for r in rows],
        "attempt": attempts,
        "status": [r["status"] for r in rows],
        "metric_names": [[k for k, v in r["metrics"].items() if _is_number(v)] for r in rows],
        "metric_values": [[v for v in r["metrics"].values() if _is_number(v)] for r in rows],
        "missing": [list(r.get("missing", ())) for r in rows],
        "computed_names": [list(r["computed"]) for r in rows],
        "computed_values": [list(r["computed"].values()) for r in rows],
        "text_names": [[k for k, v in r["metrics"].items() if not _is_number(v)] for r in rows],
        "text_values": [
            [dumps(v).decode() for v in r["metrics"].values() if not _is_number(v)] for r in rows
        ],
        "version": [
            result_version(a, r["status"] == "ok", r["collected_at_ms"])
            for a, r in zip(attempts, rows, strict=True)
        ],
    }
    return list(in_column_order(columns))


def shard_of(weights: Sequence[int], client_id: str) -> int:
    """The shard (an index into ``weights``) the Distributed table routes a client to: shard i owns the
    slots ``[sum(weights[:i]), sum(weights[:i + 1]))`` of ``halfMD5(client_id) % sum(weights)``
    (``streams.clickhouse.cluster.ShardMap.split`` does it for many rows at once)."""
    return bisect.bisect_right(list(accumulate(weights)), shard_hash(client_id) % sum(weights))
