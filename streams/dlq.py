"""Dead-letter records: the original bytes, with headers that say why, where from and when.

Headers (all UTF-8 strings except ``original_value``): ``error_class``, ``error_message``, ``stage``,
``original_topic``, ``original_partition``, ``original_offset``, ``attempts``, ``first_failure_ms``, and
``original_sha256`` plus ``original_truncated`` when the value was cut to ``MAX_ORIGINAL_BYTES``.
"""

from __future__ import annotations

import hashlib
import time

from confluent_kafka import Message

from streams.producer import Headers

MAX_ORIGINAL_BYTES = 1024 * 1024


def dead_letter(
    msg: Message,
    error_class: str,
    error_message: str,
    stage: str,
    attempts: int = 1,
    first_failure_ms: int | None = None,
) -> tuple[bytes | None, bytes, Headers]:
    """(key, value, headers) of the dead-letter record for ``msg``."""
    value = msg.value() or b""
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
    if len(value) > MAX_ORIGINAL_BYTES:
        headers.append(("original_sha256", hashlib.sha256(value).hexdigest().encode()))
        headers.append(("original_truncated", str(len(value)).encode()))
        value = value[:MAX_ORIGINAL_BYTES]
    return msg.key(), value, headers


def header_map(headers: list[tuple[str, bytes]] | None) -> dict[str, str]:
    """Headers of a consumed dead-letter record as a dict of strings (last value wins)."""
    return {key: (value or b"").decode("utf-8", "replace") for key, value in headers or []}
