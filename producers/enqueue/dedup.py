"""Exact removal of repeated client ids in bounded memory: a set while it fits, hash partitions on disk after.

``Deduplicator.add(ids)`` returns the ids of a chunk never seen before, in their first-seen order, as
long as the set of ids seen fits in ``memory_bytes`` (an estimate: each ``str``'s own size, which
grows with wide characters, plus ``SET_ENTRY_BYTES`` for its share of the set and the allocator).
Past that, the set is written to ``BUCKETS`` spill files by a hash of the id and freed, and every
later id goes, unchecked, to the "new" spill file of its bucket. ``drain()``, once the source is
exhausted, takes the buckets one by one: a set of the bucket's new ids minus the set of its ids
already returned are the ids still to return (set operations in C, no Python loop per id). A
bucket too big for the budget is partitioned again on the next ``BUCKET_BITS`` bits of the hash and
drained the same way. Every id is compared with the others as a whole string, by a ``set``: the
hash only chooses a file, and two ids with the same hash land in the same bucket, where they are
told apart like any other two, so ``distinct`` and ``duplicates`` are exact whatever the hash (the
tests inject colliding ones). ``MAX_DEPTH`` stops re-partitioning a bucket that does not split
(possible only with a degenerate hash, never with ``hash()``'s keyed SipHash): the deepest level
holds its whole bucket in memory, still exact.

Why this and not the others considered:

- A compact in-memory table of 64-bit hashes needs an exact check on every hash hit, so the ids
  themselves must stay reachable (on disk, with random reads per hit), and the standard library has
  no compact integer set: a ``set`` of ints costs ~70 bytes an entry (490 MB for 7M), and a table in
  an ``array`` probed from Python costs ~1 µs an id, a third of enqueue's whole budget per request.
  It would need numpy, or a C extension, for a gain the partitions give with the standard library.
- Leaving duplicates to the topic key and the sink (the results table is a ReplacingMergeTree read
  with FINAL) would make the processors fetch metrics of a repeated client twice, and the
  manifest's ``total`` and the duplicate count must be exact anyway, which needs the same structure.

What it costs: the ids past the memory budget are returned only after the whole source was read,
bucket by bucket and in no particular order inside a bucket; ``hash()`` of a ``str`` is keyed per
process, so that order differs between runs. Each request is keyed by its client id, and a re-run
re-sends every request with the run's ``requested_at_ms``, so the requests are byte-identical
whatever their order. The spill takes about the size of the distinct ids on disk, in a temporary
directory (``TMPDIR``) that ``close()`` removes; ids must not contain a newline (a valid id is
printable, so it never does).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TextIO

BUCKET_BITS = 6
BUCKETS = 1 << BUCKET_BITS
MAX_DEPTH = 3  # 64**3 buckets of the memory budget each: far beyond any fleet
SET_ENTRY_BYTES = 64  # a set slot at its load factor, allocator rounding (measured: ~128 B per 14-char id)
MB = 1 << 20
DEFAULT_MEMORY_MB = 128
READ_CHARS = 1 << 20  # a spill file is read back in blocks of this many characters
DRAIN_IDS = 10_000  # ids per list that drain() yields
SIZE_SAMPLE = 16  # sys.getsizeof of every 16th id: ~100 ns a call, too dear for each one
_SEEN, _NEW = "seen", "new"


class SpillError(RuntimeError):
    """The spill files could not be written or read (disk full, a temporary directory not usable)."""


@dataclass
class DedupCounts:
    """``distinct``: ids returned (each once); ``duplicates``: ids given to ``add`` and not returned."""

    distinct: int = 0
    duplicates: int = 0


class Deduplicator:
    """Returns each id once across every ``add`` and the final ``drain``; see the module docstring."""

    def __init__(
        self,
        memory_bytes: int = DEFAULT_MEMORY_MB * MB,
        *,
        hash_id: Callable[[str], int] = hash,
        spill_dir: str | None = None,
        level: int = 0,
        counts: DedupCounts | None = None,
    ) -> None:
        self.counts = counts if counts is not None else DedupCounts()
        self._budget = memory_bytes
        self._hash = hash_id
        self._spill_parent = spill_dir
        self._level = level
        self._seen: set[str] = set()
        self._held = 0.0  # estimated bytes of _seen
        self._dir: str | None = None
        self._writers: dict[tuple[str, int], TextIO] = {}

    @property
    def spilled(self) -> bool:
        """True once the ids no longer fit in memory and new ones wait on disk for ``drain``."""
        return self._dir is not None

    def add(self, ids: list[str]) -> list[str]:
        """The ids of ``ids`` known to be new now, first occurrence only, in order ([] once spilled)."""
        try:
            if self._dir is not None:
                self._route(ids, _NEW)
                return []
            seen = self._seen
            fresh = [value for value in dict.fromkeys(ids) if value not in seen]
            seen.update(fresh)
            self.counts.distinct += len(fresh)
            self.counts.duplicates += len(ids) - len(fresh)
            self._grow(fresh)
            return fresh
        except OSError as exc:
            raise self._failed(exc) from exc

    def drain(self) -> Iterator[list[str]]:
        """After the last ``add``: the new ids that waited on disk, bucket by bucket, in lists."""
        if self._dir is None:
            return
        try:
            self._close_writers()
            for bucket in range(BUCKETS):
                seen_path, new_path = self._path(_SEEN, bucket), self._path(_NEW, bucket)
                if os.path.exists(new_path):
                    yield from self._drain_bucket(seen_path, new_path)
                for path in (seen_path, new_path):
                    if os.path.exists(path):
                        os.unlink(path)
        except OSError as exc:
            raise self._failed(exc) from exc

    def close(self) -> None:
        """Remove the spill files (idempotent); the ids still waiting are given up."""
        self._close_writers()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        self._seen = set()

    def _failed(self, exc: OSError) -> SpillError:
        where = self._dir or self._spill_parent or tempfile.gettempdir()
        return SpillError(
            f"removing duplicates: the ids past the memory budget spill to {where}, which failed: "
            f"{exc.strerror or exc}; free space there (about the size of the distinct ids), point "
            "TMPDIR elsewhere or raise KCOLLECT_ENQUEUE_MEMORY_MB"
        )

    def _drain_bucket(self, seen_path: str, new_path: str) -> Iterator[list[str]]:
        """The bucket's new ids minus its seen ones, by set operations; partitioned again if too big."""
        loaded = self._load_bucket(seen_path, new_path)
        if loaded is None:
            yield from self._partition_again(seen_path, new_path)
            return
        new, lines = loaded
        self.counts.distinct += len(new)
        self.counts.duplicates += lines - len(new)
        fresh = list(new)
        del new
        for start in range(0, len(fresh), DRAIN_IDS):
            yield fresh[start : start + DRAIN_IDS]

    def _load_bucket(self, seen_path: str, new_path: str) -> tuple[set[str], int] | None:
        """(the bucket's new ids not seen, how many new lines it had), or None when over the budget."""
        seen: set[str] = set()
        new: set[str] = set()
        lines, size = 0, 0.0
        may_split = self._level + 1 <= MAX_DEPTH
        for into, path in ((seen, seen_path), (new, new_path)):
            for ids in _read_ids(path):
                into.update(ids)
                size += _size(ids)
                lines += len(ids) if into is new else 0
                held = (len(seen) + len(new)) * (SET_ENTRY_BYTES + size / (len(seen) + lines))
                if may_split and held > self._budget:
                    return None
        new -= seen
        return new, lines

    def _partition_again(self, seen_path: str, new_path: str) -> Iterator[list[str]]:
        inner = Deduplicator(
            self._budget,
            hash_id=self._hash,
            spill_dir=self._dir,
            level=self._level + 1,
            counts=self.counts,
        )
        try:
            inner._dir = tempfile.mkdtemp(prefix="kcollect-dedup-", dir=self._dir)
            for kind, path in ((_SEEN, seen_path), (_NEW, new_path)):
                for ids in _read_ids(path):
                    inner._route(ids, kind)
            yield from inner.drain()
        finally:
            inner.close()

    def _grow(self, ids: list[str]) -> None:
        self._held += _size(ids) + SET_ENTRY_BYTES * len(ids)
        if self._held > self._budget and self._level < MAX_DEPTH:
            self._spill()

    def _spill(self) -> None:
        self._dir = tempfile.mkdtemp(prefix="kcollect-dedup-", dir=self._spill_parent)
        seen, self._seen, self._held = self._seen, set(), 0.0
        self._route(seen, _SEEN)

    def _route(self, ids: Iterable[str], kind: str) -> None:
        """Append each id to the spill file of its bucket: ``BUCKET_BITS`` bits of its hash, per level."""
        shift, mask = BUCKET_BITS * self._level, BUCKETS - 1
        parts: list[list[str]] = [[] for _ in range(BUCKETS)]
        appends, hash_id = [part.append for part in parts], self._hash
        if shift:
            for value in ids:
                appends[(hash_id(value) >> shift) & mask](value)
        else:
            for value in ids:
                appends[hash_id(value) & mask](value)
        for bucket, part in enumerate(parts):
            if part:
                writer = self._writer(kind, bucket)
                writer.write("\n".join(part))
                writer.write("\n")

    def _writer(self, kind: str, bucket: int) -> TextIO:
        writer = self._writers.get((kind, bucket))
        if writer is None:
            path = self._path(kind, bucket)
            writer = open(path, "a", encoding="utf-8", errors="surrogatepass", newline="\n")  # noqa: SIM115
            self._writers[kind, bucket] = writer
        return writer

    def _path(self, kind: str, bucket: int) -> str:
        assert self._dir is not None
        return os.path.join(self._dir, f"{kind}-{bucket:02d}.ids")

    def _close_writers(self) -> None:
        writers, self._writers = self._writers, {}
        for writer in writers.values():
            writer.close()


def _size(ids: list[str]) -> float:
    """Estimated bytes of the ``str`` objects of ``ids``, from the size of every ``SIZE_SAMPLE``th."""
    sample = ids[::SIZE_SAMPLE]
    return sum(map(sys.getsizeof, sample)) * len(ids) / len(sample) if sample else 0.0


def _read_ids(path: str) -> Iterator[list[str]]:
    """The ids of a spill file, in blocks of about ``READ_CHARS``; nothing when it does not exist."""
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8", errors="surrogatepass", newline="\n") as handle:
        tail = ""
        while block := handle.read(READ_CHARS):
            ids = (tail + block).split("\n")
            tail = ids.pop()  # the start of a line that the next block ends ("" after a full line)
            if ids:
                yield ids
