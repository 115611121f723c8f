"""The local store of one partition's state: an SQLite file (stdlib ``sqlite3``, WAL journal).

Rows: ``key`` (``<schedule> NUL <client id>``, or ``clock_key`` for the schedule's run clock), the
encoded value (``history.encode_history`` / ``Clock.to_bytes``) and, for the drop rule, the schedule
and the newest observation's run number and slot. ``meta`` holds the changelog offset restored up to
(``changelog_offset``) and the changelog topic's name. A batch's writes are one transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from processors.processor.state.history import decode_history

SEP = "\x00"
Row = tuple[bytes, bytes | None]  # (key, value or None = deleted)


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


def index_of(key: bytes, value: bytes) -> tuple[str, int, int]:
    """(schedule, newest run number, newest slot ms) of a row; a clock row has -1, -1."""
    schedule, client = split_key(key)
    if not client:
        return schedule, -1, -1
    history = decode_history(value)
    newest = history[-1] if history else None
    return schedule, (newest.seq if newest else 0), (newest.at_ms if newest else 0)


class PartitionStore:
    """One partition's rows in ``path`` (created when missing)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS entries (
                key BLOB PRIMARY KEY, schedule TEXT NOT NULL, seq INTEGER NOT NULL,
                slot INTEGER NOT NULL, value BLOB NOT NULL) WITHOUT ROWID;
            CREATE INDEX IF NOT EXISTS entries_by_schedule ON entries (schedule, seq);
            CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
            """
        )

    def close(self) -> None:
        self._db.close()

    def get_many(self, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        found: dict[bytes, bytes] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT key, value FROM entries WHERE key IN ({marks})", chunk)
            found.update(rows.fetchall())
        return found

    def get(self, key: bytes) -> bytes | None:
        row = self._db.execute("SELECT value FROM entries WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def write(
        self,
        rows: Iterable[Row],
        changelog_offset: int | None = None,
        index: Mapping[bytes, tuple[str, int, int]] | None = None,
    ) -> None:
        """Upsert (value) or delete (None) each row, and move the restore offset, in one transaction.
        Of several rows of one key the last wins (rows are in changelog order). ``index``: the
        ``index_of`` of rows the caller knows it for (saves decoding their values)."""
        upserts: list[tuple[bytes, str, int, int, bytes]] = []
        deletes: list[tuple[bytes]] = []
        known = index or {}
        for key, value in dict(rows).items():
            if value is None:
                deletes.append((key,))
            else:
                upserts.append((key, *(known.get(key) or index_of(key, value)), value))
        with self._transaction():
            if deletes:
                self._db.executemany("DELETE FROM entries WHERE key = ?", deletes)
            if upserts:
                self._db.executemany(
                    "INSERT OR REPLACE INTO entries (key, schedule, seq, slot, value) VALUES (?,?,?,?,?)",
                    upserts,
                )
            if changelog_offset is not None:
                self._set_meta("changelog_offset", str(changelog_offset))

    def _transaction(self) -> _Tx:
        self._db.execute("BEGIN")
        return _Tx(self._db)

    def stale(self, schedule: str, min_seq: int, min_slot: int) -> list[bytes]:
        """Client rows of ``schedule`` whose newest run is below number ``min_seq`` or slot ``min_slot``."""
        rows = self._db.execute(
            "SELECT key FROM entries WHERE schedule = ? AND seq >= 0 AND ((seq > 0 AND seq < ?) OR slot < ?)",
            (schedule, min_seq, min_slot),
        )
        return [bytes(row[0]) for row in rows]

    def keys_of(self, schedule: str) -> list[bytes]:
        rows = self._db.execute("SELECT key FROM entries WHERE schedule = ?", (schedule,))
        return [bytes(row[0]) for row in rows]

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM entries").fetchone()[0])

    def changelog_offset(self) -> int:
        value = self._meta("changelog_offset")
        return int(value) if value is not None else 0

    def wipe(self) -> None:
        with self._transaction():
            self._db.execute("DELETE FROM entries")
            self._db.execute("DELETE FROM meta")

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
