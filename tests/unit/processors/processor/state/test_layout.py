"""Where a request partition's state lives after `kcollect topics grow`, and how two histories of a
client that moved between partitions merge."""

from __future__ import annotations

from processors.processor.state.history import Observation, encode_history, merge_histories, owner_of
from processors.processor.state.layout import Layout
from processors.processor.state.store import client_key, clock_key, index_of, split_key


def test_an_ungrown_layout_keeps_partition_p_in_changelog_partition_p() -> None:
    layout = Layout(8, 8)
    assert not layout.grown and layout.aligned
    assert [layout.source(p) for p in range(8)] == list(range(8))
    assert layout.clock_key("s", 5) == clock_key("s") and layout.seed_key("s", 5) is None


def test_a_grown_layout_shares_the_changelog_partition_the_clients_came_from() -> None:
    layout = Layout(8, 2)
    assert layout.grown and layout.aligned and not Layout(6, 4).aligned
    assert [layout.source(p) for p in range(8)] == [0, 1, 0, 1, 0, 1, 0, 1]
    assert layout.clock_key("s", 1) == clock_key("s")  # an original partition keeps its clock's key
    assert layout.clock_key("s", 5) == clock_key("s", 5) != clock_key("s")
    assert layout.seed_key("s", 5) == clock_key("s") and layout.seed_key("s", 1) is None


def test_a_grown_partitions_clock_key_is_a_clock_not_a_client() -> None:
    key = clock_key("fleet", 12)
    assert split_key(key) == ("fleet", "") and split_key(client_key("fleet", "c1")) == ("fleet", "c1")
    assert index_of(key, b'{"v": 1, "clock": [3, []]}') == ("fleet", -1, -1)


def obs(at_ms: int, value: float) -> Observation:
    return Observation(f"s-{at_ms}", at_ms, at_ms // 1000, {"bytes": value})


def test_merged_histories_keep_the_runs_of_both_newest_last() -> None:
    held = (obs(1000, 1.0), obs(3000, 3.0))  # the new partition: run 3 against run 1
    read = (obs(1000, 1.0), obs(2000, 2.0))  # the old partition handled run 2 meanwhile
    assert merge_histories(held, read, 3) == (obs(1000, 1.0), obs(2000, 2.0), obs(3000, 3.0))
    assert merge_histories(held, read, 2) == (obs(2000, 2.0), obs(3000, 3.0))
    assert merge_histories((), read, 3) == read
    assert merge_histories(held, (obs(3000, 9.0),), 3)[-1] == obs(3000, 9.0)  # the read one wins a tie


def test_the_writer_of_a_history_travels_with_it() -> None:
    history = (obs(1000, 1.0),)
    assert owner_of(encode_history(history, 5), default=1) == 5
    assert owner_of(encode_history(history), default=1) == 1  # written before owners were kept
