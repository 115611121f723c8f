"""A garbage changelog record is not a store row: the restore skips it (tests/integration: a real one)."""

from __future__ import annotations

from processors.processor.state.history import Clock, Observation, encode_history
from processors.processor.state.manager import indexed_row
from processors.processor.state.store import Row, client_key, clock_key


def usable_row(key: bytes | str | None, value: bytes | None) -> Row | None:
    """``indexed_row`` without the index."""
    found = indexed_row(key, value)
    return None if found is None else found[0]


GOOD = encode_history((Observation("s-20260101T000000Z", 1, 1, {"bytes": 1.0}),))


def test_usable_rows() -> None:
    key = client_key("s", "c1")
    assert usable_row(key, GOOD) == (key, GOOD)
    assert usable_row(key, None) == (key, None)  # a tombstone
    assert usable_row(clock_key("s"), Clock(1, ((1, 1),)).to_bytes()) is not None
    for bad in (b"", b"not json", b"[1, 2]", b'{"v": 1, "runs": [[1]]}', b'{"v": 1, "runs": "x"}'):
        assert usable_row(key, bad) is None
    assert usable_row(clock_key("s"), GOOD) is None  # a history where a clock belongs
    assert usable_row(None, GOOD) is None
    assert usable_row(b"\xff\xfe", GOOD) is None
