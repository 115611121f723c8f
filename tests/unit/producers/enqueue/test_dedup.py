"""producers.enqueue.dedup: exact duplicate removal in bounded memory, whatever the hash (forced collisions
included), with the set phase, the spill to hash partitions, re-partitioning and the depth limit."""

from __future__ import annotations

import os
import random
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from producers.enqueue import dedup
from producers.enqueue.dedup import SET_ENTRY_BYTES, Deduplicator, SpillError
from producers.enqueue.sources import FileSource, RangeSource
from producers.enqueue.validate import Validator, strict_pass, validate_only


def run(dedup_: Deduplicator, chunks: list[list[str]]) -> tuple[list[str], list[str]]:
    """(ids returned by add, ids returned by drain)."""
    early = [cid for chunk in chunks for cid in dedup_.add(chunk)]
    late = [cid for ids in dedup_.drain() for cid in ids]
    return early, late


def source_ids(count: int, distinct: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [f"client-{rng.randrange(distinct)}" for _ in range(count)]


def chunked(ids: list[str], size: int) -> list[list[str]]:
    return [ids[start : start + size] for start in range(0, len(ids), size)]


def budget_for(ids: int) -> int:
    """A memory budget that holds about ``ids`` ids of ~12 characters."""
    return ids * (SET_ENTRY_BYTES + sys.getsizeof("x" * 12))


HASHES: dict[str, Callable[[str], int]] = {
    "builtin": hash,
    "all-collide": lambda _: 7,
    "two-values": lambda value: len(value) % 2,
    "negative": lambda value: -abs(hash(value)),
    "low-bits-only": lambda value: hash(value) & 0x3F,  # every level past the first sees one bucket
}


@pytest.mark.parametrize("hash_name", sorted(HASHES))
@pytest.mark.parametrize("budget_ids", [50, 400, 100_000])
def test_each_distinct_id_once_and_exact_counts(tmp_path: Path, hash_name: str, budget_ids: int) -> None:
    ids = source_ids(6000, 2500, seed=budget_ids)
    dedup_ = Deduplicator(budget_for(budget_ids), hash_id=HASHES[hash_name], spill_dir=str(tmp_path))
    try:
        early, late = run(dedup_, chunked(ids, 700))
    finally:
        dedup_.close()
    returned = early + late
    distinct = list(dict.fromkeys(ids))
    assert len(returned) == len(set(returned))  # nothing twice
    assert set(returned) == set(distinct)  # nothing lost
    assert dedup_.counts.distinct == len(distinct)
    assert dedup_.counts.duplicates == len(ids) - len(distinct)
    assert early == distinct[: len(early)]  # before the spill: the source's first-seen order
    assert (budget_ids >= 100_000) == (not late)
    assert list(tmp_path.iterdir()) == []  # the spill directory is gone


def test_ids_with_the_same_hash_are_still_told_apart(tmp_path: Path) -> None:
    """Every id hashes alike, and they differ only in the last character: none may be dropped."""
    ids = [f"{'x' * 30}{i}" for i in range(300)] * 2
    dedup_ = Deduplicator(budget_for(20), hash_id=lambda _: 0, spill_dir=str(tmp_path))
    early, late = run(dedup_, chunked(ids, 50))
    dedup_.close()
    assert sorted(early + late) == sorted(set(ids))
    assert (dedup_.counts.distinct, dedup_.counts.duplicates) == (300, 300)


def test_a_bucket_too_big_for_memory_is_partitioned_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    levels: list[int] = []
    real = Deduplicator._partition_again

    def partition_again(self: Deduplicator, seen_path: str, new_path: str) -> Iterator[list[str]]:
        levels.append(self._level)
        return real(self, seen_path, new_path)

    monkeypatch.setattr(Deduplicator, "_partition_again", partition_again)
    ids = [f"id-{i}" for i in range(20_000)]
    dedup_ = Deduplicator(budget_for(100), spill_dir=str(tmp_path))  # 20,000/64 per bucket > 100
    early, late = run(dedup_, chunked(ids + ids[::-1], 1000))
    dedup_.close()
    assert sorted(early + late) == sorted(ids)
    assert dedup_.counts.duplicates == 20_000
    assert 0 in levels and 1 not in levels  # buckets of the first level split; theirs (~5 ids) fit
    assert list(tmp_path.iterdir()) == []


def test_the_deepest_level_keeps_its_bucket_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dedup, "MAX_DEPTH", 1)
    ids = [str(i) for i in range(3000)]
    dedup_ = Deduplicator(budget_for(10), hash_id=lambda _: 0, spill_dir=str(tmp_path))
    early, late = run(dedup_, chunked(ids * 3, 500))
    dedup_.close()
    assert sorted(early + late) == sorted(ids)
    assert (dedup_.counts.distinct, dedup_.counts.duplicates) == (3000, 6000)


def test_close_removes_the_spill_even_when_drain_stops_early(tmp_path: Path) -> None:
    dedup_ = Deduplicator(budget_for(10), spill_dir=str(tmp_path))
    dedup_.add([str(i) for i in range(5000)])
    assert dedup_.add([str(i) for i in range(3000, 8000)]) == []
    assert dedup_.spilled and len(list(tmp_path.iterdir())) == 1
    next(iter(dedup_.drain()))
    dedup_.close()
    dedup_.close()
    assert list(tmp_path.iterdir()) == []


def test_unusual_characters_survive_the_spill(tmp_path: Path) -> None:
    ids = ["é", "日本", "a b", "\U0001f600", "x\udcff", "é"] + [str(i) for i in range(200)]
    dedup_ = Deduplicator(budget_for(3), spill_dir=str(tmp_path))
    early, late = run(dedup_, [ids])
    dedup_.close()
    assert sorted(early + late) == sorted(set(ids))
    assert dedup_.counts.duplicates == 1


def test_wide_characters_count_in_the_memory_estimate(tmp_path: Path) -> None:
    """An id of 4-byte characters costs more than its ASCII twin: the set spills after fewer of them."""
    kept: dict[str, int] = {}
    for name, char in (("narrow", "x"), ("wide", "\U0001f600")):
        dedup_ = Deduplicator(budget_for(1000), spill_dir=str(tmp_path))
        ids = [char * 12 + f"{i:04d}" for i in range(3000)]
        kept[name] = sum(len(dedup_.add(chunk)) for chunk in chunked(ids, 50))
        late = [cid for rest in dedup_.drain() for cid in rest]
        dedup_.close()
        assert sorted(ids) == sorted(ids[: kept[name]] + late)
    assert 900 <= kept["narrow"] <= 1100 and kept["wide"] < 0.75 * kept["narrow"]


def test_validator_counts_stay_exact_when_the_ids_spill(tmp_path: Path) -> None:
    lines = [f"host-{i % 3000}" for i in range(9000)] + ["", "bad\x07"] + [f"host-{i}" for i in range(4000)]
    path = tmp_path / "ids.txt"
    path.write_text("\n".join(lines) + "\n")
    source = FileSource(str(path))
    validator = Validator(source, Deduplicator(budget_for(500), hash_id=lambda value: len(value)))
    try:
        ids = [cid for chunk in source.chunks(1000) for cid in validator.filter(chunk)]
        assert len(ids) < 4000  # some had to wait
        ids += [cid for rest in validator.rest() for cid in rest]
    finally:
        validator.close()
    assert sorted(ids) == sorted(f"host-{i}" for i in range(4000))
    stats = validator.stats
    assert (stats.read, stats.valid, stats.invalid, stats.duplicates) == (13002, 4000, 2, 9000)
    assert [(bad.line, bad.reason) for bad in stats.bad_lines] == [
        (9001, "empty"),
        (9002, "unprintable character"),
    ]


def test_a_trusted_source_keeps_no_set_and_its_counts(tmp_path: Path) -> None:
    validator = Validator(RangeSource(0, 49_999), Deduplicator(budget_for(10), spill_dir=str(tmp_path)))
    ids = [cid for chunk in RangeSource(0, 49_999).chunks(10_000) for cid in validator.filter(chunk)]
    assert list(validator.rest()) == [] and len(ids) == 50_000
    validator.close()
    assert (validator.stats.read, validator.stats.valid, validator.stats.duplicates) == (50_000, 50_000, 0)
    assert list(tmp_path.iterdir()) == []


def test_dry_run_and_strict_pass_through_the_spill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    path = tmp_path / "ids.txt"
    ids = [f"c{i:06d}" for i in range(30_000)]
    path.write_text("\n".join(ids + ids[:12_345]) + "\n")
    stats = validate_only(FileSource(str(path)), 1000, memory_mb=1)
    assert (stats.read, stats.valid, stats.duplicates) == (42_345, 30_000, 12_345)
    spool = strict_pass(FileSource(str(path)), 1000, memory_mb=1)
    try:
        spooled = [cid for _, chunk in spool.chunks(5000) for cid in chunk]
        assert sorted(spooled) == ids and spool.stats.duplicates == 12_345
    finally:
        spool.remove()
    assert os.listdir(tmp_path / "tmp") == []  # the spill files and the spool are gone


def test_a_spill_that_cannot_be_written_is_a_clear_error(tmp_path: Path) -> None:
    dedup_ = Deduplicator(budget_for(10), spill_dir=str(tmp_path / "missing"))
    with pytest.raises(SpillError, match=r"spill to .*missing, which failed: No such file or directory"):
        dedup_.add([str(i) for i in range(100)])
    dedup_.close()
