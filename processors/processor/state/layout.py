"""Where a request partition's state lives once ``kcollect topics grow`` gave the requests topic more
partitions than the state changelog (which is never grown).

The changelog keeps the partition count the topics were created with (C). With the requests topic at
M partitions, M a multiple of C, a client keyed to request partition p (its key's hash mod M) had
request partition p mod C before the growth (the same hash mod C): so its history is in changelog
partition p mod C, written there before and after. Request partitions p, p + C, p + 2C, ... share that
changelog partition; each store reads all of it (a moved client's history comes with it), and each
partition's rows say which request partition wrote them last (``history.owner_of``), so that one
never drops a client another partition owns now. The run clock of a request partition p >= C has its
own key (``store.clock_key(schedule, p)``), seeded from the clock of partition p mod C.
"""

from __future__ import annotations

from dataclasses import dataclass

from processors.processor.state.store import clock_key


@dataclass(frozen=True)
class Layout:
    """The requests topic's partition count and the state changelog's."""

    requests: int
    changelog: int

    @property
    def grown(self) -> bool:
        return self.requests > self.changelog

    @property
    def aligned(self) -> bool:
        """Whether every client's history is where its request partition looks for it."""
        return not self.grown or self.requests % self.changelog == 0

    def source(self, partition: int) -> int:
        """The changelog partition that holds request partition ``partition``'s state."""
        return partition % self.changelog

    def clock_key(self, schedule: str, partition: int) -> bytes:
        return clock_key(schedule) if partition < self.changelog else clock_key(schedule, partition)

    def seed_key(self, schedule: str, partition: int) -> bytes | None:
        """The clock a grown partition's clock starts from (that of the partition its clients came from)."""
        return clock_key(schedule) if partition >= self.changelog else None
