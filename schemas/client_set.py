"""A run's set of clients in a few bytes: its size and an order-independent 64-bit digest.

The digest of a set is the sum, modulo 2**64, of each distinct client id's ``halfMD5`` (the first 8
bytes of its MD5, big-endian): ClickHouse computes the same hash (``CLICKHOUSE_CLIENT_HASH``, on 18.16
and current servers), so the digest of the clients stored for a run is one aggregate query, and the
digest of a union of disjoint sets is the sum of their digests. Two different sets of the same size
share a digest with probability about 2**-64.

``covers`` decides whether the members found for a run (stored or dead-lettered) include every client of
the manifest's set, knowing only the set's size and digest: members that are certainly clients of the
run are summed, and the few uncertain ones (dead letters of records that did not decode: garbage that
names the run, or a client's result that did not decode) are tried as the missing part.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from itertools import combinations
from math import comb

MASK = (1 << 64) - 1
CLICKHOUSE_CLIENT_HASH = "halfMD5(client_id)"
MAX_COMBINATIONS = 100_000  # subsets of the uncertain members tried by ``covers``, at most


def client_hash(client_id: str) -> int:
    """``halfMD5(client_id)`` as ClickHouse computes it."""
    return int.from_bytes(hashlib.md5(client_id.encode()).digest()[:8], "big")


def digest_of(client_ids: Iterable[str]) -> int:
    """The digest of a set of distinct client ids (the caller removes duplicates)."""
    md5, from_bytes = hashlib.md5, int.from_bytes
    return sum(from_bytes(md5(c.encode()).digest()[:8], "big") for c in client_ids) & MASK


def to_hex(digest: int) -> str:
    return f"{digest & MASK:016x}"


def from_hex(text: str) -> int:
    return int(text, 16) & MASK


def covers(
    total: int, digest: int, certain: int, certain_digest: int, uncertain: dict[str, int]
) -> bool | None:
    """Whether ``certain`` members (count and digest: clients of the set) plus some of the ``uncertain``
    ones (client -> hash) make up the whole set of ``total`` clients and ``digest``.

    True or False when decided; None when the members cannot be the set by its digest alone (more certain
    members than the set holds, or too many uncertain ones to try).
    """
    need, rest = total - certain, (digest - certain_digest) & MASK
    if need < 0:
        return None
    if need == 0:
        return rest == 0
    if need > len(uncertain):
        return False
    hashes = list(uncertain.values())
    if comb(len(hashes), need) > MAX_COMBINATIONS:
        return None
    return any(sum(subset) & MASK == rest for subset in combinations(hashes, need))
