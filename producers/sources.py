"""Client sources: streams of client ids, never held whole in memory."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

_RANGE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")


class SourceError(ValueError):
    """A client source that cannot be read; the message says why."""


@dataclass(frozen=True)
class RangeSource:
    """Decimal client ids FIRST to LAST inclusive (``--clients 0-699999``; ``--clients N``: 0..N-1)."""

    first: int
    last: int

    @classmethod
    def parse(cls, text: str) -> RangeSource:
        match = _RANGE.match(text)
        if match:
            first, last = int(match.group(1)), int(match.group(2))
        elif text.strip().isdigit() and int(text) > 0:
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

    def __iter__(self) -> Iterator[str]:
        return map(str, range(self.first, self.last + 1))
