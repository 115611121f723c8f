"""Fast structural checks: True only for what the pydantic models (``schemas.models``) surely accept.

The codec (``schemas.codec``) and the sink's decoders (``processors.sink.result_rows``,
``processors.sink.batch_columns``) call these before the model: the common, valid record passes in about a
microsecond, a whole column of values in a few C-level passes; anything they decline goes to the model,
which accepts it too or says precisely what is wrong. Tests check every check against the models.
"""

from __future__ import annotations

from typing import Any

from schemas.models import (
    MAX_ATTEMPT,
    MAX_EPOCH_MS,
    MAX_ID_LENGTH,
    ClientResult,
    CollectionRequest,
    Record,
    is_valid_client_id,
    is_valid_run_id,
)

_REQUEST_KEYS = frozenset(CollectionRequest.model_fields)
_RESULT_KEYS = frozenset(ClientResult.model_fields)
_RESULT_STATUSES = frozenset(("ok", "partial"))


def _is_ms(value: Any) -> bool:
    return type(value) is int and 0 <= value <= MAX_EPOCH_MS


def _is_attempt(value: Any) -> bool:
    return type(value) is int and 0 <= value <= MAX_ATTEMPT


def is_plain_request(obj: Record, run_ids: set[str]) -> bool:
    """Fast check: True only for a request the model surely accepts. ``run_ids`` caches valid run ids."""
    client_id = obj.get("client_id")
    requested_at = obj.get("requested_at_ms")
    attempt = obj.get("attempt", 0)
    deadline = obj.get("deadline_ms")
    return (
        obj.get("v") == 1
        and _REQUEST_KEYS.issuperset(obj)
        and type(client_id) is str
        and 0 < len(client_id) <= MAX_ID_LENGTH
        and client_id.isprintable()
        and type(requested_at) is int
        and 0 <= requested_at <= MAX_EPOCH_MS
        and type(attempt) is int
        and 0 <= attempt <= MAX_ATTEMPT
        and (deadline is None or _is_ms(deadline))
        and known_run_id(obj.get("run_id"), run_ids)
    )


_INTS = frozenset((int,))
_STRS = frozenset((str,))


def ints_within(values: list[Any], high: int) -> bool:
    """Every value is an int (not a bool) from 0 to ``high``; C-level passes over the list."""
    return _INTS.issuperset(map(type, values)) and min(values) >= 0 and max(values) <= high


def client_ids_valid(values: list[Any]) -> bool:
    """Every value is a valid client id (``is_valid_client_id``), checked over the whole list."""
    return (
        _STRS.issuperset(map(type, values))
        and min(map(len, values)) > 0
        and max(map(len, values)) <= MAX_ID_LENGTH
        and all(map(str.isprintable, values))
    )


def run_ids_valid(values: list[Any], run_ids: set[str]) -> bool:
    """Every value is a valid run id; ``run_ids`` caches those already found valid."""
    return _STRS.issuperset(map(type, values)) and all(known_run_id(r, run_ids) for r in set(values))


def plain_requests(objs: list[Any], run_ids: set[str]) -> bool:
    """Fast check of a whole batch, column by column: True only when every object is a request the
    model surely accepts, with every field present (as ``request_record`` and enqueue write them)."""
    if not objs or not all(type(o) is dict and o.keys() == _REQUEST_KEYS for o in objs):
        return False
    versions = [o["v"] for o in objs]
    deadlines = [o["deadline_ms"] for o in objs]
    deadlines = [d for d in deadlines if d is not None] if None in deadlines else deadlines
    return (
        ints_within(versions, 1)
        and min(versions) == 1
        and client_ids_valid([o["client_id"] for o in objs])
        and ints_within([o["requested_at_ms"] for o in objs], MAX_EPOCH_MS)
        and ints_within([o["attempt"] for o in objs], MAX_ATTEMPT)
        and (not deadlines or ints_within(deadlines, MAX_EPOCH_MS))
        and run_ids_valid([o["run_id"] for o in objs], run_ids)
    )


def known_run_id(run_id: Any, run_ids: set[str]) -> bool:
    """``run_id`` is a valid run id; ``run_ids`` caches those already found valid."""
    if type(run_id) is not str:
        return False
    if run_id in run_ids:
        return True
    if is_valid_run_id(run_id):
        run_ids.add(run_id)
        return True
    return False


def _is_float_map(value: Any) -> bool:
    return type(value) is dict and all(type(v) is float or type(v) is int for v in value.values())


def is_plain_result(obj: Record, run_ids: set[str]) -> bool:
    """The fast check for a ClientResult (see ``is_plain_request``)."""
    client_id = obj.get("client_id")
    missing = obj.get("missing", ())
    if not (
        obj.get("v") == 1
        and _RESULT_KEYS.issuperset(obj)
        and type(client_id) is str
        and is_valid_client_id(client_id)
        and _is_ms(obj.get("requested_at_ms"))
        and _is_ms(obj.get("collected_at_ms"))
        and _is_attempt(obj.get("attempt", 0))
        and type(obj.get("status")) is str
        and obj["status"] in _RESULT_STATUSES
        and _is_float_map(obj.get("metrics"))
        and _is_float_map(obj.get("computed"))
        and (type(missing) in (list, tuple) and all(type(m) is str for m in missing))
    ):
        return False
    return known_run_id(obj.get("run_id"), run_ids)
