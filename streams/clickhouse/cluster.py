"""A ClickHouse cluster as the sink sees it: its shards (weight, replicas) and which shard owns a client.

The shards come from ``system.clusters`` on any server of the cluster (the servers' ``remote_servers``),
so the sink and the Distributed tables agree on the same list. A client's shard is the one the
Distributed table would choose for the sharding key ``schemas.ddl.SHARD_KEY``: its hash modulo the sum
of the weights, each shard owning a run of ``weight`` consecutive slots in shard order.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

from clickhouse_driver import Client

from schemas.ddl import shard_hash
from streams.settings.model import ClickHouseAddress
from streams.settings.names import SettingsError


class ClusterConfigError(SettingsError):
    """The cluster is not known to the server, or a shard has no weight or no replica."""


@dataclass(frozen=True)
class Shard:
    """One shard: its number in ``system.clusters`` (1-based), its weight and its replicas."""

    number: int
    weight: int
    replicas: tuple[ClickHouseAddress, ...]


_SHARDS_SQL = (
    "SELECT shard_num, shard_weight, replica_num, host_name, port FROM system.clusters "
    "WHERE cluster = %(cluster)s ORDER BY shard_num, replica_num"
)


def read_shards(client: Client, address: ClickHouseAddress) -> tuple[Shard, ...]:
    """The shards of ``address.cluster`` as ``client``'s server knows them; replicas are ``address``
    with the host and port of each (same user, password, database, TLS)."""
    if not address.cluster:
        raise ClusterConfigError("no cluster configured")
    rows = client.execute(_SHARDS_SQL, {"cluster": address.cluster})
    if not rows:
        raise ClusterConfigError(
            f"cluster {address.cluster!r} is not in system.clusters of {address.host}:{address.port} "
            "(check remote_servers in the servers' config)"
        )
    return shards_from_rows(rows, address)


def shards_from_rows(rows: Sequence[Sequence[object]], address: ClickHouseAddress) -> tuple[Shard, ...]:
    """``(shard_num, shard_weight, replica_num, host, port)`` rows to shards, in shard order."""
    by_number: dict[int, tuple[int, list[ClickHouseAddress]]] = {}
    for number, weight, _, host, port in rows:
        replica = dataclasses.replace(address, host=str(host), port=int(str(port)))
        entry = by_number.setdefault(int(str(number)), (int(str(weight)), []))
        entry[1].append(replica)
    shards = tuple(Shard(n, w, tuple(r)) for n, (w, r) in sorted(by_number.items()))
    if not any(s.weight for s in shards):
        raise ClusterConfigError(f"cluster {address.cluster!r}: every shard has weight 0")
    return shards


class ShardMap:
    """Which shard (an index into ``shards``) owns a client: as the Distributed table routes it."""

    def __init__(self, weights: Sequence[int]) -> None:
        if not weights or sum(weights) <= 0 or any(w < 0 for w in weights):
            raise ClusterConfigError(f"shard weights must be >= 0 with a positive sum (got {list(weights)})")
        self._total = sum(weights)
        self._ends = list(accumulate(weights))  # shard i owns slots [ends[i-1], ends[i])
        self.count = len(weights)

    def split(self, client_ids: Sequence[str]) -> list[list[int]]:
        """Row indices per shard (one list per shard, in shard order; empty lists included)."""
        parts: list[list[int]] = [[] for _ in range(self.count)]
        if self.count == 1:
            parts[0] = list(range(len(client_ids)))
            return parts
        total, ends = self._total, self._ends
        slot_owner = [bisect.bisect_right(ends, slot) for slot in range(total)]
        for index, client_id in enumerate(client_ids):
            parts[slot_owner[shard_hash(client_id) % total]].append(index)
        return parts
