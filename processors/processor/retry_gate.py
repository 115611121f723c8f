"""Hold retry-topic records until their ``not_before_ms`` header says they are due.

The stream processor pauses a partition while the gate holds records of it (so nothing busy-waits
and other partitions flow on) and hands the held records back, in order, once the first is due.
Records of other topics pass straight through.

A ``not_before_ms`` further ahead than ``max_wait_ms`` (the processor's longest retry delay plus a
margin) would pin its partition: the record waits ``max_wait_ms`` at most. One more than
``ABSURD_AHEAD_MS`` (a day) ahead is no retry delay at all (a garbage header, a wrong clock): it is
not held, and ``out_of_range`` names it so the decoder dead-letters it (reason
``not_before_out_of_range``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Message

from streams.steps.strategy import Partition

ABSURD_AHEAD_MS = 86_400_000


def not_before_ms(msg: Message) -> int:
    headers: Any = msg.headers() or []
    for key, value in headers:
        if key == "not_before_ms":
            try:
                return int(value or b"0")
            except ValueError:
                return 0
    return 0


class RetryGate:
    """Per partition of ``topic``: the records waiting, from the first one not yet due."""

    def __init__(
        self, topic: str, clock: Callable[[], float] = time.time, max_wait_ms: int | None = None
    ) -> None:
        self.topic = topic
        self._clock = clock
        self.max_wait_ms = max_wait_ms
        self.absurd_ms = max(ABSURD_AHEAD_MS, 2 * (max_wait_ms or 0))
        self._held: dict[Partition, tuple[int, list[Message]]] = {}

    def admit(self, messages: list[Message]) -> list[Message]:
        """The records that may be processed now; the rest are held (in order)."""
        topic = self.topic
        if not self._held and all(msg.topic() != topic for msg in messages):
            return messages
        now_ms = int(self._clock() * 1000)
        ready: list[Message] = []
        for msg in messages:
            if msg.topic() != topic:
                ready.append(msg)
                continue
            partition = (topic, int(msg.partition() or 0))
            held = self._held.get(partition)
            if held is not None:
                held[1].append(msg)
                continue
            due = not_before_ms(msg)
            if due <= now_ms or due - now_ms > self.absurd_ms:
                ready.append(msg)
                continue
            if self.max_wait_ms is not None:
                due = min(due, now_ms + self.max_wait_ms)
            self._held[partition] = (due, [msg])
        return ready

    def out_of_range(self, messages: list[Message]) -> list[int]:
        """Indexes of the records of this gate's topic whose ``not_before_ms`` is absurdly far ahead."""
        topic = self.topic
        limit = int(self._clock() * 1000) + self.absurd_ms
        return [i for i, msg in enumerate(messages) if msg.topic() == topic and not_before_ms(msg) > limit]

    def due(self) -> list[Message]:
        """Remove and return the held records of every partition whose first record is due."""
        if not self._held:
            return []
        now_ms = int(self._clock() * 1000)
        out: list[Message] = []
        for partition in [p for p, (due, _) in self._held.items() if due <= now_ms]:
            out.extend(self._held.pop(partition)[1])
        return out

    def held_partitions(self) -> set[Partition]:
        return set(self._held)

    def held(self) -> list[Message]:
        """Every record held, in order per partition."""
        return [msg for _, messages in self._held.values() for msg in messages]

    def drop(self, partitions: set[Partition]) -> None:
        for partition in partitions:
            self._held.pop(partition, None)
