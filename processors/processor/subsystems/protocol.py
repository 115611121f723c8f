"""Subsystems: where metrics come from. One call fetches named metrics for a batch of clients.

The protocol is small so a deployment can plug in its own: ``name``, ``metrics`` and
``fetch(requests)``, which returns one column per metric, aligned with ``requests`` (``None`` where a
value is missing). A subsystem doing I/O should rather offer ``async fetch_async(requests)`` (see
``AsyncSubsystem``): the processor awaits it on its event loop, many calls at once. A synchronous
``fetch`` that blocks should set ``blocking = True`` so it runs in a worker thread; a fast one (the
in-process simulated subsystem) is called inline. A call that fails raises
``processors.processor.retry.FetchError`` (or any exception: it counts as a retryable failure).
The built-in simulated subsystems are in ``simulated``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

Record = dict[str, Any]
MetricColumns = dict[str, list[float | None]]


class Subsystem(Protocol):
    """Fetches ``metrics`` for a batch of collection requests in one call."""

    name: str
    metrics: tuple[str, ...]

    def fetch(self, requests: Sequence[Record]) -> MetricColumns: ...


@runtime_checkable
class AsyncSubsystem(Protocol):
    """A subsystem whose call is a coroutine (HTTP, or any async client)."""

    name: str
    metrics: tuple[str, ...]

    async def fetch_async(self, requests: Sequence[Record]) -> MetricColumns: ...
