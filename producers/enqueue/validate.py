"""Validation of a client source: bad lines counted (first few kept with line numbers), duplicates dropped.

``Validator.filter`` turns one chunk of raw values into the valid client ids not seen before in this
source; once the source is exhausted, ``Validator.rest`` gives the distinct ids that had to wait on
disk (``producers.enqueue.dedup``: duplicates are removed exactly in bounded memory, a set of the ids seen
while it fits in the budget, hash partitions on disk after). A valid id has 1 to 128 printable
characters (``schemas.models.is_valid_client_id``). ``close`` removes the spill files. ``strict_pass``
is ``--strict``'s first pass: it reads the whole source, refuses it when any line is bad, and spools
the distinct valid ids to a temporary file that the second pass (``SpoolSource``) produces from; so
stdin and a query are read only once.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field

from producers.enqueue.dedup import DEFAULT_MEMORY_MB, MB, Deduplicator
from producers.enqueue.sources import Chunk, ClientSource, SourceError
from schemas.models import MAX_ID_LENGTH

SHOWN_BAD_LINES = 10


@dataclass(frozen=True)
class BadLine:
    line: int
    reason: str


@dataclass
class SourceStats:
    """``read`` raw lines; ``valid`` distinct valid ids; ``invalid`` bad lines; ``duplicates`` repeats."""

    read: int = 0
    valid: int = 0
    invalid: int = 0
    duplicates: int = 0
    bad_lines: list[BadLine] = field(default_factory=list)

    def bad_lines_text(self) -> str:
        """``N invalid line(s): line 3 (empty), ...`` with the first ten, the rest counted."""
        shown = ", ".join(f"line {bad.line} ({bad.reason})" for bad in self.bad_lines)
        more = self.invalid - len(self.bad_lines)
        return f"{self.invalid} invalid line(s): {shown}" + (f", and {more} more" if more > 0 else "")


def invalid_reason(value: str | None, missing_reason: str) -> str:
    """Why ``value`` is not a client id."""
    if value is None:
        return missing_reason
    if not value:
        return "empty"
    if len(value) > MAX_ID_LENGTH:
        return f"over {MAX_ID_LENGTH} characters"
    return "unprintable character"


class Validator:
    """Filters chunks of one source, then gives the ``rest``; ``stats`` accumulates across both."""

    def __init__(self, source: ClientSource, dedup: Deduplicator | None = None) -> None:
        self.stats = SourceStats()
        self._trusted = source.trusted
        self._missing_reason = source.missing_reason
        self._dedup = dedup if dedup is not None else Deduplicator()

    def filter(self, chunk: Chunk) -> list[str]:
        first_line, values = chunk
        stats = self.stats
        stats.read += len(values)
        if self._trusted:
            stats.valid += len(values)
            return values  # type: ignore[return-value]  # trusted sources never yield None
        valid = [
            value
            for value in values
            if value is not None and 0 < len(value) <= MAX_ID_LENGTH and value.isprintable()
        ]
        if len(valid) < len(values):
            for index, value in enumerate(values):
                if value is None or not (0 < len(value) <= MAX_ID_LENGTH and value.isprintable()):
                    self._bad(first_line + index, value)
        fresh = self._dedup.add(valid)
        self._count()
        return fresh

    def rest(self) -> Iterator[list[str]]:
        """After the last chunk: the distinct valid ids that waited on disk (none for a small source)."""
        if self._trusted:
            return
        for ids in self._dedup.drain():
            self._count()
            yield ids
        self._count()

    def close(self) -> None:
        """Remove the spill files, if any."""
        self._dedup.close()

    def _count(self) -> None:
        self.stats.valid = self._dedup.counts.distinct
        self.stats.duplicates = self._dedup.counts.duplicates

    def _bad(self, line: int, value: str | None) -> None:
        self.stats.invalid += 1
        if len(self.stats.bad_lines) < SHOWN_BAD_LINES:
            self.stats.bad_lines.append(BadLine(line, invalid_reason(value, self._missing_reason)))


def validate_only(source: ClientSource, chunk_size: int, memory_mb: int = DEFAULT_MEMORY_MB) -> SourceStats:
    """Read and validate the whole source without keeping it (``--dry-run``)."""
    validator = Validator(source, Deduplicator(memory_mb * MB))
    try:
        for chunk in source.chunks(chunk_size):
            validator.filter(chunk)
        for _ in validator.rest():
            pass
    finally:
        validator.close()
    return validator.stats


@dataclass
class SpoolSource:
    """The distinct valid ids of a source that passed ``strict_pass``, one per line in a temp file."""

    path: str
    origin: str
    stats: SourceStats
    trusted = True
    missing_reason = "no value"

    def describe(self) -> str:
        return self.origin

    def total_hint(self) -> int | None:
        return self.stats.valid

    def chunks(self, size: int) -> Iterator[Chunk]:
        with open(self.path, encoding="utf-8", newline="\n") as handle:
            line = 1
            while lines := list(itertools.islice(handle, size)):
                yield line, [text[:-1] for text in lines]
                line += len(lines)

    def remove(self) -> None:
        os.unlink(self.path)


def strict_pass(source: ClientSource, chunk_size: int, memory_mb: int = DEFAULT_MEMORY_MB) -> SpoolSource:
    """``--strict``: read everything first; SourceError when a line is bad, else the spooled ids."""
    validator = Validator(source, Deduplicator(memory_mb * MB))
    fd, path = tempfile.mkstemp(prefix="kcollect-enqueue-", suffix=".ids")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as spool:
            for chunk in source.chunks(chunk_size):
                ids = validator.filter(chunk)
                if ids and not validator.stats.invalid:
                    spool.write("\n".join(ids))
                    spool.write("\n")
            if validator.stats.invalid:
                raise SourceError(
                    f"--strict: {source.describe()} refused, nothing was enqueued: "
                    f"{validator.stats.bad_lines_text()}"
                )
            for ids in validator.rest():
                spool.write("\n".join(ids))
                spool.write("\n")
    except BaseException:
        os.unlink(path)
        raise
    finally:
        validator.close()
    return SpoolSource(path, source.describe(), validator.stats)
