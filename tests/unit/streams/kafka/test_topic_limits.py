"""Result batches cut by bytes (every row in exactly one part or reported as too large alone), dead letters
cut to what the DLQ takes with their hash, and the producer limits from the topics' limits."""

from __future__ import annotations

import hashlib

import orjson
import pytest

from schemas.result_batch import cut_batch, encode_batch, expand_batch
from streams.kafka.dead_letter import dead_letter
from streams.kafka.topic_limits import FRAMING_BYTES, TopicLimits


def _batch(n: int, metrics: int = 5, long_at: int | None = None) -> bytes:
    requests = [
        {
            "run_id": "r",
            "client_id": ("x" * 128 if i == long_at else f"c-{i}"),
            "requested_at_ms": 1,
            "attempt": 0,
        }
        for i in range(n)
    ]
    columns = {f"m{j}": [float(i * 1000 + j) + 0.123 for i in range(n)] for j in range(metrics)}
    return encode_batch(requests, 2, columns, {"mean": [1.5] * n})


def test_a_batch_that_fits_is_kept_whole() -> None:
    value = _batch(10)
    assert cut_batch(value, len(value)) == ([(10, value)], [])


@pytest.mark.parametrize("limit", [400, 1000, 5000])
def test_cut_parts_fit_and_keep_every_row_once_in_order(limit: int) -> None:
    value = _batch(300)
    parts, too_big = cut_batch(value, limit)
    assert too_big == [] and len(parts) > 1
    assert all(len(part) <= limit for _, part in parts)
    rows = [row for _, part in parts for row in expand_batch(orjson.loads(part))]
    assert rows == expand_batch(orjson.loads(value))
    assert [n for n, _ in parts] == [len(orjson.loads(part)["client_id"]) for _, part in parts]


def test_a_row_that_does_not_fit_alone_is_reported_with_its_identity() -> None:
    value = _batch(40, long_at=17)
    parts, _ = cut_batch(value, 1)  # nothing fits: every row is reported
    assert parts == []
    ordinary = max(len(_batch(1)), 300)
    parts, too_big = cut_batch(value, ordinary + 60)  # the 128-character id makes row 17 too large
    assert [(pos, ident["client_id"]) for pos, ident, _ in too_big] == [(17, "x" * 128)]
    assert expand_batch(orjson.loads(too_big[0][2]))[0]["client_id"] == "x" * 128
    assert sum(n for n, _ in parts) == 39


class _Msg:
    def __init__(self, value: bytes) -> None:
        self._value = value

    def value(self) -> bytes:
        return self._value

    def key(self) -> bytes:
        return b"k"

    def topic(self) -> str:
        return "t"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return 7


def test_a_dead_letter_is_cut_to_the_dlq_limit_with_the_hash_of_the_whole() -> None:
    row = b'{"v":1,"kind":"result_batch",' + b"9" * 20000 + b"}"
    key, value, headers = dead_letter(
        _Msg(b"{}"),
        "RecordTooLarge",
        "too big",
        "produce",
        row=(0, "c-1", row),
        run_id="r",
        max_value_bytes=5000,
    )  # type: ignore[arg-type]
    found = {k: v for k, v in headers}
    assert key == b"c-1" and value == row[:5000]
    assert found["original_sha256"] == hashlib.sha256(row).hexdigest().encode()
    assert found["original_truncated"] == str(len(row)).encode() and found["run_id"] == b"r"


def test_topic_limits_lower_the_own_limit_and_shape_the_producer() -> None:
    limits = TopicLimits({"results": 8192, "dlq": 1048588}, 1_000_000)
    assert limits.value_limit("results") == 8192 - FRAMING_BYTES
    assert limits.value_limit("other") == 1_000_000 - FRAMING_BYTES
    assert limits.producer_config() == {"batch.size": 8192, "message.max.bytes": 1048588}
    assert TopicLimits({}, 1_000_000).producer_config() == {
        "batch.size": 1_000_000,
        "message.max.bytes": 1_000_000,
    }
