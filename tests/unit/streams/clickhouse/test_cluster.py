"""Shards from system.clusters rows, and the client -> shard map (the Distributed table's rule)."""

from __future__ import annotations

import pytest

from schemas.ddl import shard_hash
from streams.clickhouse.cluster import ClusterConfigError, ShardMap, shards_from_rows
from streams.settings.model import ClickHouseAddress
from tests.oracles import shard_of

ADDRESS = ClickHouseAddress("ch0", 9000, "kcollect", "u", "p", cluster="c")


def test_shards_from_rows_keep_credentials_and_order() -> None:
    rows = [(2, 1, 1, "h3", 9003), (1, 2, 1, "h1", 9001), (1, 2, 2, "h2", 9002)]
    shards = shards_from_rows(rows, ADDRESS)
    assert [s.number for s in shards] == [1, 2]
    assert [s.weight for s in shards] == [2, 1]
    assert [(r.host, r.port) for r in shards[0].replicas] == [("h1", 9001), ("h2", 9002)]
    assert all(r.user == "u" and r.password == "p" and r.database == "kcollect" for r in shards[0].replicas)


def test_all_weights_zero_is_refused() -> None:
    with pytest.raises(ClusterConfigError):
        shards_from_rows([(1, 0, 1, "h", 1)], ADDRESS)
    with pytest.raises(ClusterConfigError):
        ShardMap([])


def test_shard_hash_is_half_md5_big_endian() -> None:
    assert shard_hash("abc") == 10376663631224000432  # SELECT halfMD5('abc') on 18.16


def test_weights_give_runs_of_slots() -> None:
    weights = [1, 2, 0, 1]
    shards = ShardMap(weights)  # slots: 0 -> 0, 1-2 -> 1, 3 -> 3; shard 2 owns none
    ids = [f"client-{i}" for i in range(4000)]
    parts = shards.split(ids)
    assert sorted(i for part in parts for i in part) == list(range(len(ids)))
    assert parts[2] == []
    for index, part in enumerate(parts):
        assert all(shard_of(weights, ids[i]) == index for i in part)
    expected = {0: 0, 1: 1, 2: 1, 3: 3}
    assert all(shard_of(weights, c) == expected[shard_hash(c) % 4] for c in ids)
    share = len(parts[1]) / len(ids)
    assert 0.45 < share < 0.55  # weight 2 of 4


def test_one_shard_takes_everything() -> None:
    assert ShardMap([3]).split(["a", "b"]) == [[0, 1]]
