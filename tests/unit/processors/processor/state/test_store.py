"""The local store: rows in changelog order (the last of a key wins), the restore offset, the drop query."""

from __future__ import annotations

from pathlib import Path

from processors.processor.state.history import Clock, Observation, encode_history
from processors.processor.state.store import PartitionStore, client_key, clock_key, split_key


def history(seq: int, at_ms: int) -> bytes:
    return encode_history((Observation(f"s-{seq}", at_ms, seq, {"bytes": 1.0}),))


def test_rows_apply_in_order_and_a_tombstone_after_a_value_deletes(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path / "p0.sqlite")
    a, b = client_key("s", "a"), client_key("s", "b")
    store.write([(a, history(1, 1000)), (b, history(1, 1000)), (a, None), (b, history(2, 2000))], 4)
    assert store.get(a) is None and store.get(b) == history(2, 2000)
    assert store.changelog_offset() == 4
    store.write([(a, history(3, 3000)), (a, None)])
    assert store.get(a) is None and store.changelog_offset() == 4
    store.close()
    reopened = PartitionStore(tmp_path / "p0.sqlite")
    assert reopened.count() == 1 and reopened.changelog_offset() == 4
    reopened.wipe()
    assert reopened.count() == 0 and reopened.changelog_offset() == 0


def test_stale_finds_clients_behind_in_runs_or_time_never_clocks(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path / "p1.sqlite")
    store.write(
        [
            (client_key("s", "old"), history(1, 1000)),
            (client_key("s", "new"), history(9, 9000)),
            (client_key("t", "other"), history(1, 1000)),
            (clock_key("s"), Clock(9, ((9000, 9),)).to_bytes()),
        ]
    )
    assert store.stale("s", 5, 0) == [client_key("s", "old")]
    assert sorted(store.stale("s", 0, 9500)) == sorted([client_key("s", "old"), client_key("s", "new")])
    assert split_key(clock_key("s")) == ("s", "")
    assert sorted(key for key, (_, index) in store.rows.items() if index[0] == "s") == sorted(
        [client_key("s", "old"), client_key("s", "new"), clock_key("s")]
    )


def test_batch_rows_reach_the_file_in_bulk_and_at_close(tmp_path: Path) -> None:
    path = tmp_path / "p2.sqlite"
    store = PartitionStore(path, flush_min_rows=4)
    a, b = client_key("s", "a"), client_key("s", "b")
    store.put({a: (history(1, 1000), ("s", 1, 1000))})
    assert store.get(a) == history(1, 1000) and store.stale("s", 5, 0) == [a]
    assert PartitionStore(path).count() == 0  # not flushed yet: a crash loses it, the changelog has it
    store.put({a: (history(2, 2000), ("s", 2, 2000)), b: (history(2, 2000), ("s", 2, 2000))})
    store.put({b: (history(3, 3000), ("s", 3, 3000))}, [a])
    assert PartitionStore(path).count() == 1  # 4 rows written (twice the rows held): flushed
    store.put({a: (history(4, 4000), ("s", 4, 4000))})
    store.close()
    reopened = PartitionStore(path)
    assert reopened.get(a) == history(4, 4000) and reopened.stale("s", 4, 0) == [b]
    assert reopened.changelog_offset() == 0
