"""The sink's decoder: result records (bytes) straight to ``client_results`` columns.

A record is a result batch (``schemas.result_batch``, what the processor sends) or a single
``ClientResult``. A batch goes through ``processors.sink.batch_columns`` (whole columns checked at once);
a batch it does not vouch for (a missing value, an unusual type) is expanded into ``ClientResult``
dicts and each row is checked on its own, so one bad row is dead-lettered while its batch-mates are
stored. For a single record, ``fast_row`` accepts only what the ``ClientResult`` model surely accepts;
anything else goes through the model (``schemas.codec.validate``), which accepts it or says precisely
what is wrong. Tests check both fast paths against the model.

The rows come out as columns (``ResultColumns``), the shape the windows keep and the insert sends:
no tuple per row is built on the batch path, and none is transposed before an insert.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from processors.sink.batch_columns import batch_columns
from processors.sink.columns import ResultColumns, empty_columns, in_column_order
from schemas.codec import CodecError, parse_object, validate
from schemas.ddl import result_version
from schemas.fast_checks import is_plain_result
from schemas.models import ClientResult
from schemas.result_batch import expand_batch, is_batch
from streams.kafka.dead_letter import BatchRow

Row = tuple[Any, ...]


def fast_row(obj: dict[str, Any], run_ids: set[str]) -> Row | None:
    """The row of a result the model surely accepts (``schemas.fast_checks.is_plain_result``), or None
    to let the model decide. ``run_ids`` caches run ids already found valid (one run per batch, typically).
    """
    if not is_plain_result(obj, run_ids):
        return None
    attempt, missing = obj.get("attempt", 0), obj.get("missing", [])
    return in_column_order(
        {
            "run_id": obj["run_id"],
            "client_id": obj["client_id"],
            "requested_at": obj["requested_at_ms"] // 1000,
            "collected_at": obj["collected_at_ms"] // 1000,
            "attempt": attempt,
            "status": obj["status"],
            "metrics": orjson.dumps(obj["metrics"]),
            "missing": missing if type(missing) is list else list(missing),
            "computed": orjson.dumps(obj["computed"]),
            "version": result_version(attempt, obj["status"] == "ok", obj["collected_at_ms"]),
        }
    )


def row_of(record: dict[str, Any]) -> Row:
    """The row of a valid result dict (through the model when the fast check declines)."""
    row = fast_row(record, set())
    if row is None:
        row = fast_row(validate(ClientResult, record).model_dump(), set())
    if row is None:  # pragma: no cover - the model's dump always passes the fast check
        raise CodecError("wrong_schema", "ClientResult: the validated result does not fit the row")
    return row


@dataclass(frozen=True)
class BadResult:
    """A record (or one row of a result batch) that is not a valid result."""

    index: int  # the record's index in the decoded batch
    error: CodecError
    position: int | None = None  # the row's position in its result batch; None: the whole record
    client_id: str | None = None  # the row's client (batch rows only)
    original: bytes | None = None  # the row as ClientResult JSON (batch rows only)

    def batch_row(self) -> BatchRow | None:
        """(position, client, JSON) of a bad batch row, for its dead letter; None for a whole record."""
        if self.position is None:
            return None
        return self.position, self.client_id or "", self.original or b""


@dataclass
class DecodedRows:
    """The valid results' rows as columns, in record order; where each row came from; the bad ones."""

    columns: ResultColumns = field(default_factory=empty_columns)
    counts: list[int] = field(default_factory=list)  # rows per record, in record order
    positions: list[int] = field(default_factory=list)  # each row's position in its record
    bad: list[BadResult] = field(default_factory=list)

    def append(self, row: Row, position: int) -> None:
        for column, value in zip(self.columns, row, strict=True):
            column.append(value)
        self.positions.append(position)

    def extend(self, columns: ResultColumns) -> None:
        for column, values in zip(self.columns, columns, strict=True):
            column.extend(values)
        self.positions.extend(range(len(columns[0])))


def _batch_rows_one_by_one(index: int, obj: dict[str, Any], out: DecodedRows) -> int:
    """Rows of a batch the fast check declined, each checked on its own; returns how many are valid."""
    try:
        expanded = expand_batch(obj)
    except CodecError as exc:
        out.bad.append(BadResult(index, exc))
        return 0
    valid = 0
    for position, record in enumerate(expanded):
        try:
            row = row_of(record)
        except CodecError as exc:
            client = record["client_id"] if type(record["client_id"]) is str else None
            out.bad.append(BadResult(index, exc, position, client, orjson.dumps(record)))
            continue
        out.append(row, position)
        valid += 1
    return valid


def decode_rows(values: Sequence[bytes | None]) -> DecodedRows:
    """Decode a batch of result records (result batches or single ClientResults) into columns."""
    out = DecodedRows()
    counts = out.counts
    loads = orjson.loads
    run_ids: set[str] = set()
    for index, data in enumerate(values):
        try:
            obj = loads(data)  # type: ignore[arg-type]
        except (orjson.JSONDecodeError, TypeError):
            obj = None
        if is_batch(obj):
            columns = batch_columns(obj, run_ids)
            if columns is None:
                counts.append(_batch_rows_one_by_one(index, obj, out))
                continue
            out.extend(columns)
            counts.append(len(columns[0]))
            continue
        row = fast_row(obj, run_ids) if type(obj) is dict else None
        if row is None:
            try:
                row = row_of(parse_object(data))
            except CodecError as exc:
                out.bad.append(BadResult(index, exc))
                counts.append(0)
                continue
        out.append(row, 0)
        counts.append(1)
    return out
