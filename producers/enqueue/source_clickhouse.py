"""A client source from ClickHouse: the first column of a query, read in blocks, never held whole.

``execute_iter`` with ``max_block_size`` streams the result; a NULL is an invalid line ("NULL"). A
query the server rejects raises ``SourceReadError`` with the server's message (exit 7), a server that
does not answer ``ClickHouseUnavailableError`` (exit 5).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from clickhouse_driver.errors import NetworkError, SocketTimeoutError

from producers.enqueue.sources import Chunk, SourceError, SourceReadError
from streams.clickhouse.client import ClickHouseUnavailableError, connect
from streams.settings.model import Settings


@dataclass
class ClickHouseSource:
    """The first column of a ClickHouse query, read in blocks (``execute_iter``, ``max_block_size``)."""

    settings: Settings
    query: str
    block_size: int = 65536
    trusted = False
    missing_reason = "NULL"

    def describe(self) -> str:
        return f"clickhouse query {self.query!r}"

    def total_hint(self) -> int | None:
        return None

    def chunks(self, size: int) -> Iterator[Chunk]:
        address = self.settings.clickhouse()
        client = connect(address)
        try:
            rows = client.execute_iter(self.query, settings={"max_block_size": self.block_size})
            line = 1
            while batch := list(itertools.islice(rows, size)):
                yield line, [_id_text(row) for row in batch]
                line += len(batch)
        except (NetworkError, SocketTimeoutError, EOFError) as exc:
            raise ClickHouseUnavailableError(
                f"ClickHouse at {address.host}:{address.port} did not answer: {exc}"
            ) from None
        except SourceError:
            raise
        except Exception as exc:
            raise SourceReadError(f"--from-clickhouse query failed: {_server_message(exc)}") from None
        finally:
            client.disconnect()


def _server_message(exc: Exception) -> str:
    """The server's message without its stack trace (clickhouse-driver puts both in one string)."""
    text = str(exc).split("Stack trace:")[0]
    return " ".join(line.strip() for line in text.splitlines() if line.strip()) or type(exc).__name__


def _id_text(row: Any) -> str | None:
    value = row[0] if row else None
    return None if value is None else str(value)
