"""The client-set digest (``schemas.client_set``) and the coverage decision of run completion."""

from __future__ import annotations

from schemas.client_set import MASK, client_hash, covers, digest_of, from_hex, to_hex


def test_hash_is_clickhouse_half_md5() -> None:
    # SELECT halfMD5('abc'), halfMD5('c17') on ClickHouse 18.16.1
    assert client_hash("abc") == 10376663631224000432
    assert client_hash("c17") == 5566952968772757004


def test_digest_is_order_free_and_additive_over_disjoint_sets() -> None:
    a, b = [str(i) for i in range(100)], [f"x{i}" for i in range(50)]
    assert digest_of(a) == digest_of(reversed(a))
    assert digest_of(a + b) == (digest_of(a) + digest_of(b)) & MASK
    assert from_hex(to_hex(digest_of(a))) == digest_of(a) and len(to_hex(1)) == 16


def test_covers() -> None:
    clients = [str(i) for i in range(10)]
    total, digest = len(clients), digest_of(clients)
    stored = clients[:8]
    garbage = {"bad-version": client_hash("bad-version"), "junk": client_hash("junk")}
    certain = (len(stored), digest_of(stored))
    assert covers(total, digest, *certain, {}) is False  # two pending
    assert covers(total, digest, *certain, garbage) is False  # garbage does not stand in for them
    late = {"8": client_hash("8"), "9": client_hash("9")}
    assert covers(total, digest, *certain, garbage | late) is True
    assert covers(total, digest, total, digest, garbage) is True
    other = [*clients[:9], "other"]
    assert covers(total, digest, len(other), digest_of(other), {}) is False  # same size, another set
    assert covers(total, digest, total + 1, digest, {}) is None
