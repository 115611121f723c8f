"""A subsystem answered by ClickHouse: one query per batch of clients.

``query`` is a SELECT whose first column is the client id and whose other columns are the metrics,
in the subsystem's ``metrics`` order, with ``%(client_ids)s`` (and optionally ``%(run_ids)s``) as
parameters, e.g. ``SELECT client_id, cpu, mem FROM fleet.latest WHERE client_id IN %(client_ids)s``.
A client the query returns no row for gets missing values. clickhouse-driver is synchronous, so the
call runs in a worker thread (``blocking = True``) with one connection per concurrent call.
"""

from __future__ import annotations

import queue
from collections.abc import Sequence
from typing import Any

from processors.processor.retry import FetchError
from processors.processor.subsystems.protocol import MetricColumns, Record
from streams.clickhouse.client import connect
from streams.settings.model import ClickHouseAddress


class SqlSubsystem:
    """Runs ``query`` once per batch on a small pool of ClickHouse connections."""

    blocking = True

    def __init__(
        self, name: str, metrics: Sequence[str], query: str, address: ClickHouseAddress, pool_size: int = 2
    ) -> None:
        self.name = name
        self.metrics = tuple(metrics)
        self.query = query
        self._pool: queue.Queue[Any] = queue.Queue()
        for _ in range(pool_size):
            self._pool.put(
                connect(address, connect_timeout=10, send_receive_timeout=300)  # the driver's defaults
            )

    def fetch(self, requests: Sequence[Record]) -> MetricColumns:
        client_ids = [r["client_id"] for r in requests]
        params = {"client_ids": tuple(set(client_ids)), "run_ids": tuple({r["run_id"] for r in requests})}
        client = self._pool.get()
        try:
            rows = client.execute(self.query, params)
        except Exception as exc:
            client.disconnect()
            raise FetchError(f"{type(exc).__name__}: {str(exc)[:300]}") from None
        finally:
            self._pool.put(client)
        by_client = {str(row[0]): row[1:] for row in rows}
        columns: MetricColumns = {}
        for i, metric in enumerate(self.metrics):
            columns[metric] = [_number(by_client.get(c), i) for c in client_ids]
        return columns


def _number(row: Any, index: int) -> float | None:
    if row is None or index >= len(row) or row[index] is None:
        return None
    return float(row[index])
