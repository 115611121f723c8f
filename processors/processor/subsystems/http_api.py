"""A subsystem reached over HTTP: one POST per batch of clients, JSON in and out (docs/processor.md).

Request body: ``{"subsystem": name, "metrics": [...], "clients": [[run_id, client_id], ...]}``.
Response (200): ``{"clients": [client_id, ...], "values": {metric: [number | null, ...]}}``, the client
ids echoed in request order. Anything else is a failed call: a 429 or 503 with ``Retry-After`` is
retried after that long; other 5xx, timeouts and connection errors are retried; a body that is not
that JSON (HTML, wrong types, other clients, wrong lengths) is retried too; a body over
``max_response_bytes`` is a permanent failure. One ``httpx.AsyncClient`` per subsystem keeps
connections alive and pooled (as many as the subsystem's ``max_concurrency``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import orjson

from processors.processor.retry import FetchError, PermanentFetchError
from processors.processor.subsystems.protocol import MetricColumns, Record


class BadResponse(FetchError):
    """A 200 whose body is not the documented JSON."""


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (seconds form only; an HTTP date counts as 1 s)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return 1.0


def parse_body(body: bytes, client_ids: list[str], metrics: tuple[str, ...]) -> MetricColumns:
    """Validate a response body against the clients asked for; BadResponse saying what is wrong."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadResponse(f"body is not JSON: {body[:60]!r}") from None
    if type(obj) is not dict or obj.get("clients") != client_ids:
        raise BadResponse("body does not echo the requested clients in order")
    values = obj.get("values")
    if type(values) is not dict:
        raise BadResponse("body has no 'values' object")
    columns: MetricColumns = {}
    n = len(client_ids)
    for metric in metrics:
        column = values.get(metric)
        if column is None:
            continue
        if type(column) is not list or len(column) != n:
            raise BadResponse(f"metric {metric!r} is not a list of {n} values")
        for v in column:
            if v is not None and type(v) is not float and type(v) is not int:
                raise BadResponse(f"metric {metric!r} has a value of type {type(v).__name__}")
        columns[metric] = [None if v is None else float(v) for v in column]
    return columns


class HttpSubsystem:
    """POSTs each batch to ``url``; see the module docstring for the format and the failures."""

    def __init__(
        self,
        name: str,
        metrics: Sequence[str],
        url: str,
        max_connections: int = 4,
        max_response_bytes: int = 16 * 1024 * 1024,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.metrics = tuple(metrics)
        self.url = url
        self._max_bytes = max_response_bytes
        self._headers = {"content-type": "application/json", **(headers or {})}
        self._limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:  # created on first use, inside the event loop that awaits it
            self._client = httpx.AsyncClient(limits=self._limits, timeout=None)
        return self._client

    async def fetch_async(self, requests: Sequence[Record]) -> MetricColumns:
        client_ids = [r["client_id"] for r in requests]
        payload: dict[str, Any] = {
            "subsystem": self.name,
            "metrics": list(self.metrics),
            "clients": [[r["run_id"], r["client_id"]] for r in requests],
        }
        try:
            async with self._http().stream(
                "POST", self.url, content=orjson.dumps(payload), headers=self._headers
            ) as response:
                self._check_status(response)
                body = await self._read_capped(response)
        except httpx.HTTPError as exc:
            raise FetchError(f"{type(exc).__name__}: {exc}") from None
        return parse_body(body, client_ids, self.metrics)

    def _check_status(self, response: httpx.Response) -> None:
        if response.status_code == 200:
            return
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        error = FetchError(f"HTTP {response.status_code}", retry_after)
        if 400 <= response.status_code < 500 and response.status_code not in (408, 425, 429):
            error = PermanentFetchError(f"HTTP {response.status_code}")
        raise error

    async def _read_capped(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_bytes:
            raise PermanentFetchError(f"response of {declared} bytes is over the {self._max_bytes} cap")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self._max_bytes:
                raise PermanentFetchError(f"response over the {self._max_bytes} byte cap")
            chunks.append(chunk)
        return b"".join(chunks)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
