"""Client sources: streams of client ids, never held whole in memory.

Every source yields ``chunks(size)``: ``(first_line_number, raw_values)`` where the values are the
consecutive lines (or rows) from that line number on, unvalidated (``None`` for a row without the
id: a CSV row missing the column, a NULL from ClickHouse). ``producers.enqueue.validate`` filters them.
A ``RangeSource`` is ``trusted``: its ids are valid and distinct by construction, so it skips that.
The ClickHouse query source is in ``producers.enqueue.source_clickhouse``.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TextIO

_RANGE = re.compile(r"\s*([0-9]+)\s*-\s*([0-9]+)\s*")
_COUNT = re.compile(r"\s*([0-9]+)\s*")
Chunk = tuple[int, list[str | None]]


class SourceError(ValueError):
    """A client source that cannot be used as given (bad argument, or refused by --strict)."""


class SourceReadError(SourceError):
    """A client source that could not be read: an unreadable file, a failing ClickHouse query."""


class ClientSource(Protocol):
    @property
    def trusted(self) -> bool:
        """True when every value is a valid id and no id repeats (validation is skipped)."""

    @property
    def missing_reason(self) -> str:
        """Why a ``None`` value is invalid (``no column X``, ``NULL``)."""

    def describe(self) -> str: ...

    def total_hint(self) -> int | None: ...

    def chunks(self, size: int) -> Iterator[Chunk]: ...


@dataclass(frozen=True)
class RangeSource:
    """Decimal client ids FIRST to LAST inclusive (``--clients 0-699999``; ``--clients N``: 0..N-1)."""

    first: int
    last: int
    trusted = True
    missing_reason = "no value"

    @classmethod
    def parse(cls, text: str) -> RangeSource:
        match = _RANGE.fullmatch(text)
        if match:
            first, last = int(match.group(1)), int(match.group(2))
        elif (count := _COUNT.fullmatch(text)) and int(count.group(1)) > 0:
            first, last = 0, int(text) - 1
        else:
            raise SourceError(f"--clients takes N or FIRST-LAST, e.g. 100000 or 0-699999 (got {text!r})")
        if last < first:
            raise SourceError(f"--clients range {text!r} is empty: LAST must be >= FIRST")
        return cls(first, last)

    @property
    def total(self) -> int:
        return self.last - self.first + 1

    def describe(self) -> str:
        return f"range {self.first}-{self.last}"

    def total_hint(self) -> int | None:
        return self.total

    def __iter__(self) -> Iterator[str]:
        return map(str, range(self.first, self.last + 1))

    def chunks(self, size: int) -> Iterator[Chunk]:
        for start in range(self.first, self.last + 1, size):
            stop = min(start + size, self.last + 1)
            yield start - self.first + 1, list(map(str, range(start, stop)))


def _count_lines(path: Path) -> int:
    count = 0
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            count += block.count(b"\n")
    return count


@dataclass
class FileSource:
    """One id per line, or CSV with a header naming ``column``; ``-`` is stdin (read once).

    Lines are decoded as UTF-8 (undecodable bytes become unprintable characters, so such a line is
    invalid) and stripped of surrounding whitespace. CSV line numbers count records, header = 1.
    """

    path: str
    column: str | None = None
    trusted = False

    @property
    def missing_reason(self) -> str:
        return f"no column {self.column}"

    def __post_init__(self) -> None:
        if self.path != "-":
            try:
                with open(self.path, "rb"):
                    pass
            except OSError as exc:
                raise SourceReadError(f"cannot read --from-file {self.path}: {exc.strerror or exc}") from None

    def describe(self) -> str:
        where = "stdin" if self.path == "-" else f"file {self.path}"
        return f"{where}" + (f" column {self.column}" if self.column else "")

    def total_hint(self) -> int | None:
        if self.path == "-" or not Path(self.path).is_file():
            return None
        lines = _count_lines(Path(self.path))
        return max(lines - 1, 0) if self.column else lines

    def _open(self) -> TextIO:
        if self.path == "-":
            return io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="surrogateescape", newline="")
        try:
            return open(self.path, encoding="utf-8", errors="surrogateescape", newline="")
        except OSError as exc:
            raise SourceReadError(f"cannot read --from-file {self.path}: {exc.strerror or exc}") from None

    def chunks(self, size: int) -> Iterator[Chunk]:
        handle = self._open()
        try:
            if self.column is None:
                yield from _line_chunks(handle, size)
            else:
                yield from _csv_chunks(handle, self.column, size, self.describe())
        except OSError as exc:
            raise SourceReadError(f"reading {self.describe()} failed: {exc}") from None
        finally:
            if self.path != "-":
                handle.close()


def _line_chunks(handle: TextIO, size: int) -> Iterator[Chunk]:
    line = 1
    while lines := list(itertools.islice(handle, size)):
        yield line, [text.strip() for text in lines]
        line += len(lines)


def _csv_chunks(handle: TextIO, column: str, size: int, name: str) -> Iterator[Chunk]:
    reader = csv.reader(handle)
    header = next(reader, None)
    if header is None or column not in [h.strip() for h in header]:
        raise SourceError(f"{name}: the CSV header has no column {column!r} (header: {header})")
    index = [h.strip() for h in header].index(column)
    line = 2
    while rows := list(itertools.islice(reader, size)):
        yield line, [row[index].strip() if len(row) > index else None for row in rows]
        line += len(rows)
