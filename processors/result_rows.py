"""The sink's decoder: result records (bytes) straight to ``client_results`` columns.

A record is a result batch (``schemas.result_batch``, what the processor sends) or a single
``ClientResult``. A batch goes through ``processors.batch_columns`` (whole columns checked at once);
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

from processors.batch_columns import batch_columns
from processors.columns import ResultColumns, empty_columns
from schemas.codec import CodecError, parse_object, validate
from schemas.fast_checks import known_run_id
from schemas.models import MAX_ATTEMPT, MAX_EPOCH_MS, MAX_ID_LENGTH, ClientResult
from schemas.result_batch import expand_batch, is_batch
from streams.dlq import BatchRow

Row = tuple[Any, ...]

_KEYS = frozenset(ClientResult.model_fields)
_NUMBERS = frozenset((float, int))
_STATUSES = frozenset(("ok", "partial"))


def fast_row(obj: dict[str, Any], run_ids: set[str]) -> Row | None:
    """The row of a result the model surely accepts, or None to let the model decide.

    ``run_ids`` caches run ids already found valid (one run per batch, typically).
    """
    if obj.keys() == _KEYS:  # every field present: the processor's own records
        version, run_id, client_id = obj["v"], obj["run_id"], obj["client_id"]
        requested, collected, attempt = obj["requested_at_ms"], obj["collected_at_ms"], obj["attempt"]
        status, metrics, computed, missing = obj["status"], obj["metrics"], obj["computed"], obj["missing"]
    elif _KEYS.issuperset(obj):
        get = obj.get
        version, run_id, client_id = get("v"), get("run_id"), get("client_id")
        requested, collected, attempt = get("requested_at_ms"), get("collected_at_ms"), get("attempt", 0)
        status, metrics, computed, missing = (
            get("status"),
            get("metrics"),
            get("computed"),
            get("missing", []),
        )
    else:
        return None
    if (
        type(version) is int
        and version == 1
        and type(client_id) is str
        and 0 < len(client_id) <= MAX_ID_LENGTH
        and client_id.isprintable()
        and type(requested) is int
        and 0 <= requested <= MAX_EPOCH_MS
        and type(collected) is int
        and 0 <= collected <= MAX_EPOCH_MS
        and type(attempt) is int
        and 0 <= attempt <= MAX_ATTEMPT
        and type(status) is str
        and status in _STATUSES
        and type(metrics) is dict
        and _NUMBERS.issuperset(map(type, metrics.values()))
        and type(computed) is dict
        and _NUMBERS.issuperset(map(type, computed.values()))
        and type(missing) is list
        and (not missing or all(type(m) is str for m in missing))
        and type(run_id) is str
        and known_run_id(run_id, run_ids)
    ):
        dumps = orjson.dumps
        return (
            run_id,
            client_id,
            requested // 1000,
            collected // 1000,
            attempt,
            status,
            dumps(metrics),
            missing,
            dumps(computed),
            attempt,
        )
    return None


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

    @property
    def rows(self) -> list[Row]:
        """The rows as tuples (for tests and tools; the sink itself keeps the columns)."""
        return list(zip(*self.columns, strict=True))

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
