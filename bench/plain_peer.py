"""The ceiling for bench/e2e: the same work as kcollect's processor and sink in plain confluent-kafka loops,
with no retries, no dead letters, no checks beyond what the work needs.

``python -m bench.plain_peer processor``: consume requests (5,000 at a time), compute each client's 11
simulated metrics (``simulated_value``) and the ``summary`` compute, produce one ClientResult JSON per
client (key client_id) to the results topic; offsets auto-committed.

``python -m bench.plain_peer sink``: consume results (1,000 at a time), decode each ClientResult, keep the
rows as ``client_results`` columns (the typed layout: names shared per metric set, values as tuples)
and insert them with clickhouse-driver, one columnar insert per 100,000 rows or when a poll brings
nothing; offsets auto-committed.

Configured by the environment (bench/e2e sets it): ``PLAIN_BROKER``, ``PLAIN_REQUESTS``,
``PLAIN_RESULTS``, ``PLAIN_GROUP``, ``PLAIN_CLICKHOUSE_URL``; ``PLAIN_READY`` (a file written once the
consumer is assigned).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, Producer

from bench.peer_work import collect_one
from schemas.ddl import insert_results_sql, result_version
from streams.clickhouse.client import connect
from streams.settings.model import parse_clickhouse_url

WINDOW_ROWS = 100_000


def _consumer(topic: str) -> Consumer:
    ready = os.environ.get("PLAIN_READY")

    def on_assign(consumer: Any, partitions: Any) -> None:
        if ready and partitions:
            Path(ready).write_text("ready")

    consumer = Consumer(
        {
            "bootstrap.servers": os.environ["PLAIN_BROKER"],
            "group.id": os.environ["PLAIN_GROUP"],
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
            "session.timeout.ms": 6000,
            "fetch.queue.backoff.ms": 20,
        }
    )
    consumer.subscribe([topic], on_assign=on_assign)
    return consumer


def run_processor() -> None:
    consumer = _consumer(os.environ["PLAIN_REQUESTS"])
    producer = Producer(
        {"bootstrap.servers": os.environ["PLAIN_BROKER"], "linger.ms": 5, "compression.type": "lz4"}
    )
    topic = os.environ["PLAIN_RESULTS"]
    while True:
        messages = consumer.consume(5000, 0.1)
        for message in messages:
            if message.error():
                continue
            request = orjson.loads(message.value() or b"null")
            value = collect_one(request)
            while True:
                try:
                    producer.produce(topic, value, key=request["client_id"].encode())
                    break
                except BufferError:
                    producer.poll(0.05)
        producer.poll(0)


class Columns:
    """The rows of a window as ``client_results`` columns (typed layout)."""

    def __init__(self) -> None:
        self.lists: dict[str, list[Any]] = {}
        self.clear()
        self.names: dict[tuple[str, ...], list[str]] = {}

    def clear(self) -> None:
        self.lists = {
            name: []
            for name in (
                "run_id", "client_id", "requested_at", "collected_at", "attempt", "status",
                "metric_names", "metric_values", "computed_names", "computed_values", "version",
            )
        }  # fmt: skip

    def shared(self, keys: Any) -> list[str]:
        key = tuple(keys)
        names = self.names.get(key)
        if names is None:
            names = self.names[key] = list(key)
        return names

    def add(self, result: dict[str, Any]) -> None:
        lists = self.lists
        metrics, computed = result["metrics"], result["computed"]
        lists["run_id"].append(result["run_id"])
        lists["client_id"].append(result["client_id"])
        lists["requested_at"].append(result["requested_at_ms"] // 1000)
        lists["collected_at"].append(result["collected_at_ms"] // 1000)
        lists["attempt"].append(result["attempt"])
        lists["status"].append(result["status"])
        lists["metric_names"].append(self.shared(metrics))
        lists["metric_values"].append(tuple(metrics.values()))
        lists["computed_names"].append(self.shared(computed))
        lists["computed_values"].append(tuple(computed.values()))
        lists["version"].append(result_version(result["attempt"], True, result["collected_at_ms"]))

    def __len__(self) -> int:
        return len(self.lists["run_id"])


def run_sink() -> None:
    address = parse_clickhouse_url(os.environ["PLAIN_CLICKHOUSE_URL"])
    client = connect(address)
    consumer = _consumer(os.environ["PLAIN_RESULTS"])
    columns = Columns()
    names = tuple(columns.lists)
    without = frozenset(("missing", "text_names", "text_values"))
    sql = insert_results_sql(address.database, without)
    assert sql.split("(", 1)[1].split(")", 1)[0] == ", ".join(names), sql
    while True:
        messages = consumer.consume(1000, 0.1)
        for message in messages:
            if not message.error():
                columns.add(orjson.loads(message.value() or b"null"))
        if len(columns) >= WINDOW_ROWS or (columns and not messages):
            client.execute(sql, list(columns.lists.values()), columnar=True)
            columns.clear()


def main() -> None:
    role = sys.argv[1] if len(sys.argv) > 1 else ""
    if role == "processor":
        run_processor()
    elif role == "sink":
        run_sink()
    else:
        raise SystemExit("usage: python -m bench.plain_peer processor|sink")


if __name__ == "__main__":
    main()
