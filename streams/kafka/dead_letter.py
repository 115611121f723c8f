"""Dead-letter records: the original bytes, with headers that say why, where from and when.

Headers (all UTF-8 strings except ``original_value``): ``error_class``, ``error_message``, ``stage``,
``original_topic``, ``original_partition``, ``original_offset``, ``attempts``, ``first_failure_ms``, and
``original_sha256`` plus ``original_truncated`` (the original length) when the value was cut to
``MAX_ORIGINAL_BYTES`` or to what the DLQ topic takes (``max_value_bytes``), and
``run_id`` when the original is a JSON object whose ``run_id`` is a valid run id (given by the caller or
read from the value). Without it (not JSON, no or a bad run id) the record counts for no run: run
status cannot attribute it, so such a run stays incomplete until its clients are re-sent.
"""

from __future__ import annotations

import hashlib
import time

import orjson
from confluent_kafka import Message

from schemas.models import is_valid_run_id
from streams.kafka.producer import Headers

BatchRow = tuple[int, str, bytes]
"""One row of a record that holds many (a result batch): its position, its client id, its own JSON."""

MAX_ORIGINAL_BYTES = 512 * 1024  # with its headers well under librdkafka's message.max.bytes (1,000,000)


def dead_letter(
    msg: Message,
    error_class: str,
    error_message: str,
    stage: str,
    attempts: int = 1,
    first_failure_ms: int | None = None,
    run_id: str | None = None,
    row: BatchRow | None = None,
    max_value_bytes: int = MAX_ORIGINAL_BYTES,
) -> tuple[bytes | None, bytes, Headers]:
    """(key, value, headers) of the dead-letter record for ``msg``.

    ``row``: one row of a record that holds many (a result batch): (position, client id, the row's
    own JSON); the dead letter then holds that row, keyed by its client, with a ``batch_row`` header.
    ``max_value_bytes``: the value is cut to this (the DLQ topic's limit), with its hash and length.
    """
    value = (row[2] if row else msg.value()) or b""
    run_id = run_id or run_id_of(value)
    headers: Headers = [
        ("error_class", error_class.encode()),
        ("error_message", error_message[:2000].encode("utf-8", "replace")),
        ("stage", stage.encode()),
        ("original_topic", (msg.topic() or "").encode()),
        ("original_partition", str(msg.partition()).encode()),
        ("original_offset", str(msg.offset()).encode()),
        ("attempts", str(attempts).encode()),
        ("first_failure_ms", str(first_failure_ms or int(time.time() * 1000)).encode()),
    ]
    if run_id:
        headers.append(("run_id", run_id.encode()))
    if row:
        headers.append(("batch_row", str(row[0]).encode()))
    limit = min(MAX_ORIGINAL_BYTES, max_value_bytes)
    if len(value) > limit:
        headers.append(("original_sha256", hashlib.sha256(value).hexdigest().encode()))
        headers.append(("original_truncated", str(len(value)).encode()))
        value = value[:limit]
    return (row[1].encode() if row else msg.key()), value, headers


def run_id_of(value: bytes | None) -> str | None:
    """The run id of an original record when it decodes far enough (a JSON object with a valid one)."""
    try:
        obj = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    run_id = obj.get("run_id") if type(obj) is dict else None
    return run_id if type(run_id) is str and is_valid_run_id(run_id) else None


def header_map(headers: list[tuple[str, bytes]] | None) -> dict[str, str]:
    """Headers of a consumed dead-letter record as a dict of strings (last value wins)."""
    return {key: (value or b"").decode("utf-8", "replace") for key, value in headers or []}
