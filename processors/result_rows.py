"""The sink's decoder: result records (bytes) straight to row tuples in ``RESULT_COLUMNS`` order.

A record is a result batch (``schemas.result_batch``, what the processor sends) or a single
``ClientResult``. For a batch, ``batch_rows`` checks whole columns at once (types, ranges, lengths:
C-level passes over lists) and formats each client's metric maps as JSON text from the columns
(one ``orjson.dumps`` per column, split and joined with the constant keys); a batch it does not vouch
for (a missing value, an unusual type) is expanded into ``ClientResult`` dicts and each row is
checked on its own, so one bad row is dead-lettered while its batch-mates are stored. For a single
record, ``fast_row`` accepts only what the ``ClientResult`` model surely accepts; anything else goes
through the model (``schemas.codec.validate``), which accepts it or says precisely what is wrong.
Tests check both fast paths against the model. ``processors.columns.rows_to_columns`` transposes the
row tuples in C.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import orjson

from schemas.codec import (
    CodecError,
    client_ids_valid,
    ints_within,
    known_run_id,
    parse_object,
    run_ids_valid,
    validate,
)
from schemas.models import MAX_ID_LENGTH, ClientResult
from schemas.result_batch import ResultBatch, expand_batch, is_batch
from streams.dlq import BatchRow

Row = tuple[Any, ...]

_KEYS = frozenset(ClientResult.model_fields)
_BATCH_KEYS = frozenset(ResultBatch.model_fields)
_MAX_MS = 253402300799999
_NUMBERS = frozenset((float, int))
_STRS = frozenset((str,))
_STATUSES = frozenset(("ok", "partial"))
_NUMBER_CHARS = b"0123456789.-+eE,"
_NO_MISSING: list[str] = []  # shared by every batch row: the driver only reads it


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
        and 0 <= requested <= _MAX_MS
        and type(collected) is int
        and 0 <= collected <= _MAX_MS
        and type(attempt) is int
        and 0 <= attempt <= 1000
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


def _columns_ok(names: Any, columns: Any, n: int) -> bool:
    """Distinct string names, one list of ``n`` values each (``_json_maps`` checks the values)."""
    return (
        type(names) is list
        and type(columns) is list
        and len(names) == len(columns)
        and _STRS.issuperset(map(type, names))
        and len(set(names)) == len(names)
        and all(type(c) is list and len(c) == n for c in columns)
    )


def _json_maps(names: list[str], columns: list[list[Any]], n: int) -> list[bytes] | None:
    """Each client's ``{name: value, ...}`` JSON text, formatted from whole columns; None unless every
    value is a number.

    A column's JSON holds only number characters when, and only when, every value is an int or a
    float (``null``, ``true``, strings, lists and objects all bring other characters), so one
    ``bytes.translate`` checks the whole column in C.
    """
    if not names:
        return [b"{}"] * n
    texts = [orjson.dumps(column)[1:-1] for column in columns]
    if any(text.translate(None, _NUMBER_CHARS) for text in texts):
        return None
    keys = [orjson.dumps(name) + b":" for name in names]
    constants = [b"{" + keys[0], *[b"," + key for key in keys[1:]], b"}"]
    pieces: list[Any] = [None] * (2 * len(names) + 1)
    pieces[0::2] = [repeat(c, n) for c in constants]
    pieces[1::2] = [text.split(b",") for text in texts]
    return list(map(b"".join, zip(*pieces, strict=True)))


def batch_rows(obj: dict[str, Any], run_ids: set[str]) -> list[Row] | None:
    """The rows of a result batch the model surely accepts row by row, or None to check each row."""
    if obj.keys() != _BATCH_KEYS or obj["v"] != 1 or type(obj["v"]) is not int:
        return None
    clients, run, collected = obj["client_id"], obj["run_id"], obj["collected_at_ms"]
    requested, attempts = obj["requested_at_ms"], obj["attempt"]
    n = len(clients) if type(clients) is list else 0
    if not (
        n
        and all(type(c) is list and len(c) == n for c in (run, requested, attempts))
        and type(collected) is int
        and 0 <= collected <= _MAX_MS
        and client_ids_valid(clients)
        and run_ids_valid(run, run_ids)
        and ints_within(requested, _MAX_MS)
        and ints_within(attempts, 1000)
        and _columns_ok(obj["metric_names"], obj["metrics"], n)
        and _columns_ok(obj["computed_names"], obj["computed"], n)
    ):
        return None
    metrics = _json_maps(obj["metric_names"], obj["metrics"], n)
    computed = _json_maps(obj["computed_names"], obj["computed"], n)
    if metrics is None or computed is None:
        return None
    seconds = [ms // 1000 for ms in requested]
    return list(
        zip(
            run,
            clients,
            seconds,
            repeat(collected // 1000, n),
            attempts,
            repeat("ok", n),
            metrics,
            repeat(_NO_MISSING, n),
            computed,
            attempts,
            strict=True,
        )
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
    """Rows of the valid results in record order, where each came from, and the bad ones."""

    rows: list[Row] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)  # rows per record, in record order
    positions: list[int] = field(default_factory=list)  # each row's position in its record
    bad: list[BadResult] = field(default_factory=list)


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
            out.rows.append(row_of(record))
        except CodecError as exc:
            client = record["client_id"] if type(record["client_id"]) is str else None
            out.bad.append(BadResult(index, exc, position, client, orjson.dumps(record)))
            continue
        out.positions.append(position)
        valid += 1
    return valid


def decode_rows(values: Sequence[bytes | None]) -> DecodedRows:
    """Decode a batch of result records (result batches or single ClientResults) into rows."""
    out = DecodedRows()
    rows, counts, positions = out.rows, out.counts, out.positions
    loads = orjson.loads
    run_ids: set[str] = set()
    for index, data in enumerate(values):
        try:
            obj = loads(data)  # type: ignore[arg-type]
        except (orjson.JSONDecodeError, TypeError):
            obj = None
        if is_batch(obj):
            many = batch_rows(obj, run_ids)
            if many is None:
                counts.append(_batch_rows_one_by_one(index, obj, out))
                continue
            rows.extend(many)
            positions.extend(range(len(many)))
            counts.append(len(many))
            continue
        row = fast_row(obj, run_ids) if type(obj) is dict else None
        if row is None:
            try:
                row = row_of(parse_object(data))
            except CodecError as exc:
                out.bad.append(BadResult(index, exc))
                counts.append(0)
                continue
        rows.append(row)
        positions.append(0)
        counts.append(1)
    return out
