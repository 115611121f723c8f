"""The orjson codec: bytes <-> messages, with one typed error for anything that is not a valid message.

Hot paths decode a whole consumed batch at once (``decode_requests``) into plain
dicts. A fast structural check (``schemas.fast_checks``) accepts the common, valid record in about a
microsecond; anything it does not accept is handed to the pydantic model, which either accepts it too
(the dict it returns is the model's dump) or says precisely what is wrong. The models in
``schemas.models`` stay the single definition of the schema; tests check the fast path against them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from schemas.fast_checks import is_plain_request, plain_requests
from schemas.models import CollectionRequest, Record

M = TypeVar("M", bound=BaseModel)


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


def request_encoder(
    run_id: str, requested_at_ms: int, attempt: int = 0, deadline_ms: int | None = None
) -> Callable[[str], bytes]:
    """A fast encoder of one run's requests: client id -> the exact bytes of ``request_record(...)``.

    The run's constant fields are serialized once; only the client id is encoded per record.
    """
    head = orjson.dumps({"v": 1, "run_id": run_id})[:-1] + b',"client_id":'
    deadline = b"null" if deadline_ms is None else b"%d" % deadline_ms
    tail = b',"requested_at_ms":%d,"attempt":%d,"deadline_ms":%s}' % (requested_at_ms, attempt, deadline)
    dumps = orjson.dumps

    def encode_one(client_id: str) -> bytes:
        return head + dumps(client_id) + tail

    return encode_one


__all__ = [
    "CodecError",
    "Record",
    "decode",
    "decode_requests",
    "encode",
    "encode_record",
    "parse_object",
    "request_encoder",
    "request_record",
    "validate",
]
