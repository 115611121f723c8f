"""The local store of one partition's state: its rows in memory, kept in an SQLite file (stdlib
``sqlite3``, WAL journal) written in bulk.

Rows: ``key`` (``<schedule> NUL <client id>``, or ``clock_key`` for the schedule's run clock), the
encoded value (``history.encode_history`` / ``Clock.to_bytes``) and, for the drop rule, the schedule
and the newest observation's run number and slot. ``meta`` holds the changelog offset restored up to
(``changelog_offset``). Reads and the drop rule's scan are served from memory; the file is what a
restart starts from (then the changelog from its offset on).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path

from processors.processor.state.history import newest_of

SEP = "\x00"
Row = tuple[bytes, bytes | None]  # (key, value or None = deleted)
Index = tuple[str, int, int]  # (schedule, newest run number, newest slot ms); a clock row: -1, -1


def client_key(schedule: str, client_id: str) -> bytes:
    return f"{schedule}{SEP}{client_id}".encode()


def clock_key(schedule: str, partition: int | None = None) -> bytes:
    """The run clock's key: ``<schedule> NUL``, or ``<schedule> NUL NUL <partition>`` for the clock of a
    request partition beyond the changelog's partitions (``layout``: after ``kcollect topics grow``)."""
    tag = "" if partition is None else f"{SEP}{partition}"
    return f"{schedule}{SEP}{tag}".encode()


def split_key(key: bytes) -> tuple[str, str]:
    """(schedule, client id); the client id is empty for a clock key."""
    schedule, _, client = key.decode().partition(SEP)
    return schedule, ("" if client.startswith(SEP) else client)


def index_of(key: bytes, value: bytes) -> Index:
    """The ``Index`` of a row."""
    schedule, client = split_key(key)
    if not client:
        return schedule, -1, -1
    return (schedule, *newest_of(value))


FLUSH_MIN_ROWS = 10_000
"""A store writes its changed rows to its file once this many rows were written since its last flush,
and at least twice as many as it holds: a flush costs about as much as rewriting the whole table (its
keys are spread over every page), so it waits for about two runs' worth of its clients."""


class PartitionStore:
    """One partition's rows, held in memory and written to ``path`` (created when missing) in bulk.

    Every row is in ``_rows`` (loaded when the store opens); ``write`` changes them there and notes the
    keys changed; ``flush`` writes the changed rows, sorted by key, in one transaction (and the restore
    offset with them). A flush happens when a write moves the restore offset, at ``close``, and when the
    rows written since the last flush reach ``FLUSH_MIN_ROWS`` and twice the number of rows held. What
    a crash loses of the file is rows written after its last flush: the changelog has them (from the
    file's restore offset on), or they belong to requests not committed yet.
    """

    def __init__(self, path: Path, flush_min_rows: int = FLUSH_MIN_ROWS) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._flush_min = flush_min_rows
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS entries (
                key BLOB PRIMARY KEY, schedule TEXT NOT NULL, seq INTEGER NOT NULL,
                slot INTEGER NOT NULL, value BLOB NOT NULL) WITHOUT ROWID;
            DROP INDEX IF EXISTS entries_by_schedule;
            CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
            """
        )
        names: dict[str, str] = {}
        self._rows: dict[bytes, tuple[bytes, Index]] = {
            bytes(key): (bytes(value), (names.setdefault(schedule, schedule), seq, slot))
            for key, schedule, seq, slot, value in self._db.execute(
                "SELECT key, schedule, seq, slot, value FROM entries"
            )
        }
        self._schedules = names  # one str object per schedule name
        self._changed: set[bytes] = set()
        self._written = 0  # rows written since the last flush
        stored = self._meta("changelog_offset")
        self._offset = int(stored) if stored is not None else 0
        self._offset_moved = False

    def close(self) -> None:
        self.flush()
        self._db.close()

    @property
    def rows(self) -> Mapping[bytes, tuple[bytes, Index]]:
        """Every row held: key -> (value, its index). Read only: ``write`` and ``put`` change them."""
        return self._rows

    def get(self, key: bytes) -> bytes | None:
        row = self._rows.get(key)
        return None if row is None else row[0]

    def write(
        self,
        rows: Iterable[Row],
        changelog_offset: int | None = None,
        index: Mapping[bytes, Index] | None = None,
    ) -> None:
        """Upsert (value) or delete (None) each row; of several rows of one key the last wins (rows are
        in changelog order). ``index``: the ``index_of`` of rows the caller knows it for (saves decoding
        their values). ``changelog_offset``: move the restore offset, and flush."""
        known = index or {}
        held = self._rows
        changed = self._changed
        schedules = self._schedules
        for key, value in rows:
            self._written += 1
            changed.add(key)
            if value is None:
                held.pop(key, None)
                continue
            schedule, seq, slot = known.get(key) or index_of(key, value)
            held[key] = (value, (schedules.setdefault(schedule, schedule), seq, slot))
        if changelog_offset is not None:
            self._offset = changelog_offset
            self._offset_moved = True
            self.flush()
        else:
            self._maybe_flush()

    def put(self, upserts: Mapping[bytes, tuple[bytes, Index]], deletes: Iterable[bytes] = ()) -> None:
        """A batch's rows: ``upserts`` (key -> (value, its index)), then ``deletes`` (no key in both)."""
        held = self._rows
        held.update(upserts)
        self._changed.update(upserts)
        self._written += len(upserts)
        for key in deletes:
            self._written += 1
            held.pop(key, None)
            self._changed.add(key)
        self._maybe_flush()

    def _maybe_flush(self) -> None:
        if self._written >= max(self._flush_min, 2 * len(self._rows)):
            self.flush()

    def flush(self) -> None:
        """The changed rows (sorted by key) and the restore offset to the file, in one transaction."""
        if not self._changed and not self._offset_moved:
            return
        held = self._rows
        changed = sorted(self._changed)
        upserts = [(key, *held[key][1], held[key][0]) for key in changed if key in held]
        deletes = [(key,) for key in changed if key not in held]
        with self._transaction():
            if deletes:
                self._db.executemany("DELETE FROM entries WHERE key = ?", deletes)
            if upserts:
                self._db.executemany(
                    "INSERT OR REPLACE INTO entries (key, schedule, seq, slot, value) VALUES (?,?,?,?,?)",
                    upserts,
                )
            if self._offset_moved:
                self._set_meta("changelog_offset", str(self._offset))
        self._changed.clear()
        self._written = 0
        self._offset_moved = False

    def _transaction(self) -> _Tx:
        self._db.execute("BEGIN")
        return _Tx(self._db)

    def stale(self, schedule: str, min_seq: int, min_slot: int) -> list[bytes]:
        """Client rows of ``schedule`` whose newest run is below number ``min_seq`` or slot ``min_slot``."""
        return [
            key
            for key, (_, (of, seq, slot)) in self._rows.items()
            if of == schedule and seq >= 0 and ((0 < seq < min_seq) or slot < min_slot)
        ]

    def count(self) -> int:
        return len(self._rows)

    def changelog_offset(self) -> int:
        return self._offset

    def wipe(self) -> None:
        with self._transaction():
            self._db.execute("DELETE FROM entries")
            self._db.execute("DELETE FROM meta")
        self._rows.clear()
        self._changed.clear()
        self._written = 0
        self._offset = 0
        self._offset_moved = False

    def size_bytes(self) -> int:
        return sum(
            p.stat().st_size
            for p in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm"))
            if p.exists()
        )

    def _meta(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, name: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))


class _Tx:
    """COMMIT on a clean exit, ROLLBACK on an exception (the connection is in autocommit mode)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> _Tx:
        return self

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        self._db.execute("ROLLBACK" if kind is not None else "COMMIT")
