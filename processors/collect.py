"""Turn a batch of collection requests into client results: fetch from every subsystem, then compute.

Pure apart from the subsystem calls it is given; the results are plain dicts in the ClientResult
shape, in request order.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from typing import Any

from processors.compute import ComputeFn
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
