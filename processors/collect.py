"""Turn a batch of collection requests into client results: fetch from every subsystem, then compute.

Pure apart from the subsystem calls it is given; the results are plain dicts in the ClientResult
shape, in request order. ``encode_results`` goes straight to the encoded records: for a batch where
no value is missing and the compute function has a columnar twin (``processors.compute.COLUMNAR``)
it formats whole columns at once (orjson per column, one bytes template per client), which is
several times cheaper than building and encoding a dict per client; otherwise it falls back to
``build_results``. Both give the same JSON (tests check it).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from typing import Any

import orjson

from processors.compute import COLUMNAR, ComputeFn
from processors.subsystems import Columns, Subsystem

Record = dict[str, Any]


def fetch_all(subsystems: Sequence[Subsystem], requests: Sequence[Record], chunk: int) -> Columns:
    """One column per metric over ``requests``, calling each subsystem once per ``chunk`` requests."""
    columns: Columns = {}
    for start in range(0, len(requests), chunk):
        part = requests[start : start + chunk]
        for subsystem in subsystems:
            fetched = subsystem.fetch(part)
            for metric in subsystem.metrics:
                values = fetched.get(metric)
                columns.setdefault(metric, []).extend(values if values is not None else [None] * len(part))
    return columns


def build_results(
    requests: Sequence[Record], columns: Columns, compute: ComputeFn, now_ms: int
) -> list[Record]:
    """Results for ``requests`` from fetched ``columns``; a client with missing values is ``partial``."""
    names = tuple(columns)
    complete = all(None not in column for column in columns.values())
    rows = zip(*columns.values(), strict=True) if names else repeat(())
    results: list[Record] = []
    append = results.append
    for request, row in zip(requests, rows, strict=False):  # rows is endless when there are no metrics
        metrics: dict[str, Any] = dict(zip(names, row, strict=True))
        missing = [] if complete else [name for name, value in metrics.items() if value is None]
        if missing:
            metrics = {name: value for name, value in metrics.items() if value is not None}
        append(
            {
                "v": 1,
                "run_id": request["run_id"],
                "client_id": request["client_id"],
                "requested_at_ms": request["requested_at_ms"],
                "attempt": request.get("attempt", 0),
                "collected_at_ms": now_ms,
                "status": "partial" if missing else "ok",
                "metrics": metrics,
                "missing": missing,
                "computed": compute(metrics),
            }
        )
    return results


Encoded = list[tuple[str, bytes]]


def _constants(names: tuple[str, ...], computed: tuple[str, ...], now_ms: int) -> list[bytes]:
    """The constant JSON text between a result's variable parts (there is one more than parts)."""
    dumps = orjson.dumps
    metric_keys = [dumps(k) + b":" for k in names]
    computed_keys = [dumps(k) + b":" for k in computed]
    return [
        b'{"v":1,"run_id":',
        b',"client_id":',
        b',"requested_at_ms":',
        b',"attempt":',
        b',"collected_at_ms":' + str(now_ms).encode() + b',"status":"ok","metrics":{' + metric_keys[0],
        *[b"," + k for k in metric_keys[1:]],
        b'},"missing":[],"computed":{' + computed_keys[0],
        *[b"," + k for k in computed_keys[1:]],
        b"}}",
    ]


def _split(column: Sequence[float | int]) -> list[bytes]:
    """Each number's JSON, from one dumps of the column (numbers hold no comma; strings may: never here)."""
    return orjson.dumps(column)[1:-1].split(b",")


def encode_results(
    requests: Sequence[Record], columns: Columns, compute: ComputeFn, now_ms: int
) -> tuple[Encoded, int]:
    """(client id, encoded ClientResult) per request, in order, and how many are ``partial``."""
    if not requests:
        return [], 0
    names = tuple(columns)
    columnar = COLUMNAR.get(compute)
    if columnar is None or not names or any(None in column for column in columns.values()):
        results = build_results(requests, columns, compute, now_ms)
        dumps = orjson.dumps
        return [(r["client_id"], dumps(r)) for r in results], sum(1 for r in results if r["missing"])
    values: list[list[float]] = [columns[name] for name in names]  # type: ignore[misc]
    computed = columnar(values)
    if not computed:
        results = build_results(requests, columns, compute, now_ms)
        return [(r["client_id"], orjson.dumps(r)) for r in results], 0
    client_ids = [r["client_id"] for r in requests]
    parts = [
        [orjson.dumps(r["run_id"]) for r in requests]
        if len({r["run_id"] for r in requests}) > 1
        else repeat(orjson.dumps(requests[0]["run_id"])),
        list(map(orjson.dumps, client_ids)),
        _split([r["requested_at_ms"] for r in requests]),
        _split([r.get("attempt", 0) for r in requests]),
        *[_split(column) for column in values],
        *[_split(column) for column in computed.values()],
    ]
    constants = _constants(names, tuple(computed), now_ms)
    pieces: list[Any] = [None] * (len(parts) + len(constants))
    pieces[0::2] = [repeat(c) for c in constants]
    pieces[1::2] = parts
    encoded = list(map(b"".join, zip(*pieces, strict=False)))  # the repeats are endless: zip stops at n
    return list(zip(client_ids, encoded, strict=True)), 0
