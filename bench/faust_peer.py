"""The same processor workload in faust-streaming, for bench/e2e's comparison row.

A faust agent consumes the requests topic, computes the 11 simulated metrics (alpha: uptime, beta:
load_0..9, ``processors.processor.subsystems.protocol.simulated_value``) and the ``summary``
compute, and produces one ClientResult JSON per request to the results topic, where kcollect's own
sink stores it. It is the idiomatic faust shape: one record at a time through ``async for``,
``await topic.send``.

Configured by the environment (bench/e2e sets it): ``FAUST_PEER_BROKER`` (host:port),
``FAUST_PEER_REQUESTS``, ``FAUST_PEER_RESULTS``, ``FAUST_PEER_APP`` (app id = consumer group),
``FAUST_PEER_PARTITIONS``, ``FAUST_PEER_DATADIR``.
Run: ``python -m bench.faust_peer worker --without-web -l warn``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import faust
import orjson

from bench.peer_work import collect_one

app = faust.App(
    os.environ.get("FAUST_PEER_APP", "kcollect-faust-peer"),
    broker=f"kafka://{os.environ.get('FAUST_PEER_BROKER', '127.0.0.1:9092')}",
    value_serializer="raw",
    key_serializer="raw",
    topic_partitions=int(os.environ.get("FAUST_PEER_PARTITIONS", "8")),
    topic_disable_leader=True,
    web_enabled=False,
    consumer_auto_offset_reset="earliest",
    broker_session_timeout=3.0,
    store="memory://",
    datadir=os.environ.get("FAUST_PEER_DATADIR", "/tmp/kcollect-faust-peer"),
)
requests = app.topic(os.environ.get("FAUST_PEER_REQUESTS", "requests"), value_type=bytes, internal=False)
results = app.topic(os.environ.get("FAUST_PEER_RESULTS", "results"), value_type=bytes, internal=False)


@app.agent(requests)
async def collect(stream: Any) -> AsyncIterator[None]:
    async for value in stream:
        request = orjson.loads(value)
        await results.send(key=request["client_id"].encode(), value=collect_one(request))
        yield None


if __name__ == "__main__":
    app.main()
