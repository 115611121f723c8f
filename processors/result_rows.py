"""The sink's decoder: result records (bytes) straight to row tuples in ``RESULT_COLUMNS`` order.

One pass per record: ``orjson.loads``, a structural check that accepts only what the ``ClientResult``
model surely accepts (strict types, ranges, statuses, number-valued maps, valid ids), and the row
tuple ClickHouse gets (times in seconds, metric maps as JSON text). No intermediate result dict and
no second pass over dicts to build columns: ``processors.columns.rows_to_columns`` transposes the
tuples in C. Anything the check does not vouch for goes through the pydantic model
(``schemas.codec.validate``), which either accepts it (its dump becomes the row) or says precisely
what is wrong; tests check the check against the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from schemas.codec import CodecError, parse_object, validate
from schemas.models import MAX_ID_LENGTH, ClientResult, is_valid_run_id

Row = tuple[Any, ...]

_KEYS = frozenset(ClientResult.model_fields)
_MAX_MS = 253402300799999
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
        and (run_id in run_ids or _remember(run_id, run_ids))
    ):
        dumps = orjson.dumps
        return (
            run_id,
            client_id,
            requested // 1000,
            collected // 1000,
            attempt,
            status,
            dumps(metrics).decode(),
            missing,
            dumps(computed).decode(),
            attempt,
        )
    return None


def _remember(run_id: str, run_ids: set[str]) -> bool:
    if is_valid_run_id(run_id):
        run_ids.add(run_id)
        return True
    return False


def row_of(record: dict[str, Any]) -> Row:
    """The row of a valid result dict (through the model when the fast check declines)."""
    row = fast_row(record, set())
    if row is None:
        row = fast_row(validate(ClientResult, record).model_dump(), set())
    if row is None:  # pragma: no cover - the model's dump always passes the fast check
        raise CodecError("wrong_schema", "ClientResult: the validated result does not fit the row")
    return row


def decode_rows(values: Sequence[bytes | None]) -> tuple[list[Row], list[tuple[int, CodecError]]]:
    """Decode a batch of ClientResult records: rows of the valid ones in order, (index, error) per bad."""
    rows: list[Row] = []
    bad: list[tuple[int, CodecError]] = []
    append = rows.append
    loads = orjson.loads
    run_ids: set[str] = set()
    for index, data in enumerate(values):
        try:
            obj = loads(data)  # type: ignore[arg-type]
        except (orjson.JSONDecodeError, TypeError):
            obj = None
        if type(obj) is dict:
            row = fast_row(obj, run_ids)
            if row is not None:
                append(row)
                continue
        try:
            append(row_of(parse_object(data)))
        except CodecError as exc:
            bad.append((index, exc))
    return rows, bad
