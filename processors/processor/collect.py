"""Fetched metric columns to result batches: compute, then encode.

Pure. ``encode_results`` turns fetched columns into result
batches (``schemas.result_batch``): the metric columns as they are, the computed values as columns
(through the compute function's columnar twin, ``processors.processor.compute.COLUMNAR``, when no value is
missing), one batch per run of requests from one partition (tests/oracles.py holds the same outcome as one
``ClientResult`` dict per client, which the batches are tested against).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

from processors.processor.compute import COLUMNAR, ComputeFn
from processors.processor.subsystems.protocol import MetricColumns, Record
from schemas.result_batch import encode_batch

MAX_BATCH_CLIENTS = 1000
"""Clients per result batch at most: ~250 bytes each, so a batch stays far below the broker's and the
producer's 1 MB message limits even with 128-character ids."""


@dataclass(frozen=True)
class EncodedBatch:
    """One result batch (``schemas.result_batch``) of ``clients`` clients from request ``partition``."""

    partition: int
    clients: int
    value: bytes


def compute_columns(columns: MetricColumns, compute: ComputeFn, n: int) -> dict[str, list[Any]]:
    """The computed values of ``n`` clients as columns (``None`` where a client has no such value).

    Whole columns at once through the compute function's columnar twin when every value is there;
    otherwise per client, over the metrics that client has.
    """
    names = tuple(columns)
    columnar = COLUMNAR.get(compute)
    if columnar is not None and names and all(None not in c for c in columns.values()):
        computed = columnar([columns[name] for name in names])  # type: ignore[misc]
        if computed:
            return check_names(computed)
    rows = zip(*columns.values(), strict=True) if names else repeat((), n)
    per_client = [compute({k: v for k, v in zip(names, row, strict=True) if v is not None}) for row in rows]
    keys: dict[str, None] = {}
    for values in per_client:
        keys.update(dict.fromkeys(values))
    return check_names({key: [values.get(key) for values in per_client] for key in keys})


class Unencodable(TypeError):
    """A computed result that cannot be a result batch (e.g. a value name that is not a string)."""


def check_names(computed: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """``computed`` itself, once every value name is a string (else ``Unencodable``)."""
    wrong = [name for name in computed if type(name) is not str]
    if wrong:
        raise Unencodable(f"computed value names must be strings, got {wrong[:3]!r}")
    return computed


def partition_runs(partitions: Sequence[int], limit: int = MAX_BATCH_CLIENTS) -> list[tuple[int, int]]:
    """``[start, end)`` spans of consecutive requests from one partition, at most ``limit`` long."""
    spans: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(partitions) + 1):
        if i == len(partitions) or partitions[i] != partitions[start] or i - start == limit:
            spans.append((start, i))
            start = i
    return spans


def encode_results(
    requests: Sequence[Record],
    partitions: Sequence[int],
    columns: MetricColumns,
    compute: ComputeFn,
    now_ms: int,
    stateful: dict[str, list[Any]] | None = None,
) -> tuple[list[EncodedBatch], int]:
    """Result batches for ``requests`` (one per run of a request partition), and how many are partial.

    ``partitions[i]`` is the partition request ``i`` came from; a client's result batch goes to the
    results partition of that number, so each client's results stay in one partition and in order.
    ``stateful``: more computed columns (the state's outputs, ``processors.processor.state``).
    """
    computed = compute_columns(columns, compute, len(requests))
    if stateful:
        computed = computed | stateful
    partial = 0
    if any(None in column for column in columns.values()):
        partial = sum(1 for row in zip(*columns.values(), strict=True) if None in row)
    encoded: list[EncodedBatch] = []
    for start, end in partition_runs(partitions):
        metrics = {name: column[start:end] for name, column in columns.items()}
        values = {name: column[start:end] for name, column in computed.items()}
        value = encode_batch(requests[start:end], now_ms, metrics, values)
        encoded.append(EncodedBatch(partitions[start], end - start, value))
    return encoded, partial
