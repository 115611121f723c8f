"""The orjson codec: bytes <-> messages, with one typed error for anything that is not a valid message.

Hot paths decode a whole consumed batch at once (``decode_requests`` / ``decode_results``) into plain
dicts. A fast structural check accepts the common, valid record in about a microsecond; anything it
does not accept is handed to the pydantic model, which either accepts it too (the dict it returns is
the model's dump) or says precisely what is wrong. The models in ``schemas.models`` stay the single
definition of the schema; tests check the fast path against them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from schemas.models import (
    MAX_ID_LENGTH,
    ClientResult,
    CollectionRequest,
    is_valid_client_id,
    is_valid_run_id,
)

M = TypeVar("M", bound=BaseModel)
Record = dict[str, Any]

_REQUEST_KEYS = frozenset(CollectionRequest.model_fields)
_RESULT_KEYS = frozenset(ClientResult.model_fields)
_MAX_MS = 253402300799999
_RESULT_STATUSES = frozenset(("ok", "partial"))


class CodecError(ValueError):
    """A record that cannot be decoded. ``reason`` is a short stable code, ``detail`` says what was wrong."""

    REASONS = ("empty", "invalid_utf8", "not_json", "not_object", "unknown_version", "wrong_schema")

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def parse_object(data: bytes | None) -> Record:
    """Parse JSON bytes into a dict, or raise CodecError saying why not."""
    if not data:
        raise CodecError("empty", "the record has no value")
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as uexc:
            raise CodecError("invalid_utf8", str(uexc)) from None
        raise CodecError("not_json", str(exc)) from None
    if type(obj) is not dict:
        raise CodecError("not_object", f"expected a JSON object, got {type(obj).__name__}")
    return obj


def validate(model: type[M], obj: Record) -> M:
    """Validate a parsed object against ``model`` or raise CodecError (unknown_version / wrong_schema)."""
    version = obj.get("v")
    if version != 1:
        raise CodecError(
            "unknown_version", f"{model.__name__} schema version {version!r} is not known (known: 1)"
        )
    try:
        return model.model_validate_json(orjson.dumps(obj))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(record)"
        raise CodecError("wrong_schema", f"{model.__name__}.{where}: {first['msg']}") from None


def decode(model: type[M], data: bytes | None) -> M:
    """Decode one record into ``model`` or raise CodecError."""
    return validate(model, parse_object(data))


def _is_ms(value: Any) -> bool:
    return type(value) is int and 0 <= value <= _MAX_MS


def _is_attempt(value: Any) -> bool:
    return type(value) is int and 0 <= value <= 1000


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
        and 0 <= requested_at <= _MAX_MS
        and type(attempt) is int
        and 0 <= attempt <= 1000
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
        and ints_within([o["requested_at_ms"] for o in objs], _MAX_MS)
        and ints_within([o["attempt"] for o in objs], 1000)
        and (not deadlines or ints_within(deadlines, _MAX_MS))
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


def _decode_batch(
    model: type[BaseModel],
    values: Sequence[bytes | None],
    fast_check: Any,
) -> tuple[list[Record], list[tuple[int, CodecError]]]:
    good: list[Record] = []
    bad: list[tuple[int, CodecError]] = []
    run_ids: set[str] = set()
    for index, data in enumerate(values):
        try:
            obj = parse_object(data)
            if not fast_check(obj, run_ids):
                obj = validate(model, obj).model_dump()
            good.append(obj)
        except CodecError as exc:
            bad.append((index, exc))
    return good, bad


def decode_requests(values: Sequence[bytes | None]) -> tuple[list[Record], list[tuple[int, CodecError]]]:
    """Decode CollectionRequest records: the valid dicts in order, and (index, error) per bad one.

    The common batch (every record a complete, valid request) is checked column by column
    (``plain_requests``); any other batch record by record.
    """
    loads = orjson.loads
    try:
        objs = [loads(value) for value in values]  # type: ignore[arg-type]
    except (orjson.JSONDecodeError, TypeError):
        objs = []
    if plain_requests(objs, set()):
        return objs, []
    return _decode_batch(CollectionRequest, values, is_plain_request)


def decode_results(values: Sequence[bytes | None]) -> tuple[list[Record], list[tuple[int, CodecError]]]:
    """Decode a batch of ClientResult records: valid dicts in order, and (index, error) for each bad one."""
    return _decode_batch(ClientResult, values, is_plain_result)


def encode(message: BaseModel) -> bytes:
    """Encode a model to JSON bytes."""
    return orjson.dumps(message.model_dump(mode="json"))


def encode_record(record: Record) -> bytes:
    """Encode an already valid message dict (hot paths build dicts, not models)."""
    return orjson.dumps(record)


def request_record(
    run_id: str, client_id: str, requested_at_ms: int, attempt: int = 0, deadline_ms: int | None = None
) -> Record:
    """A CollectionRequest as a plain dict, with every field, in the model's field order."""
    return {
        "v": 1,
        "run_id": run_id,
        "client_id": client_id,
        "requested_at_ms": requested_at_ms,
        "attempt": attempt,
        "deadline_ms": deadline_ms,
    }


def request_encoder(run_id: str, requested_at_ms: int, attempt: int = 0) -> Callable[[str], bytes]:
    """A fast encoder of one run's requests: client id -> the exact bytes of ``request_record(...)``.

    The run's constant fields are serialized once; only the client id is encoded per record.
    """
    head = orjson.dumps({"v": 1, "run_id": run_id})[:-1] + b',"client_id":'
    tail = b',"requested_at_ms":%d,"attempt":%d,"deadline_ms":null}' % (requested_at_ms, attempt)
    dumps = orjson.dumps

    def encode_one(client_id: str) -> bytes:
        return head + dumps(client_id) + tail

    return encode_one


__all__ = [
    "CodecError",
    "Record",
    "client_ids_valid",
    "decode",
    "decode_requests",
    "decode_results",
    "encode",
    "encode_record",
    "ints_within",
    "known_run_id",
    "parse_object",
    "plain_requests",
    "request_encoder",
    "request_record",
    "run_ids_valid",
    "validate",
]
