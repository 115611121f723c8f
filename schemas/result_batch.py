"""Result batches: the results of many clients in one record of the results topic, as columns.

The processor sends one record per consumed batch and request partition instead of one record per
client: a Kafka record, a delivery report and a decode per client were most of the pipeline's
per-client cost. A batch is JSON::

    {"v": 1, "kind": "result_batch", "collected_at_ms": 1795447073767,
     "run_id": ["r1", ...], "client_id": ["c1", ...], "requested_at_ms": [...], "attempt": [...],
     "metric_names": ["uptime", "load_0"], "metrics": [[705.87, ...], [454.87, ...]],
     "computed_names": ["mean"], "computed": [[474.5, ...]]}

Row ``i`` of a batch is the ``ClientResult`` of client ``client_id[i]`` (``expand_batch`` says exactly
which): its metrics are the names whose column holds a number at ``i``; a ``null`` there is a metric
that was not fetched, so the row is ``partial`` with that name in ``missing``; a ``null`` in a
computed column is a value the compute function did not give. Each row is validated on its own by
the ``ClientResult`` model, so one bad row is dead-lettered while its batch-mates are stored.

Ordering: the processor sends every batch made from request partition ``p`` to results partition
``p`` modulo the results topic's partition count, so a client's results stay in one partition, in
order, as they would with the client id as key. Single ``ClientResult`` records (a replayed dead
letter, a user's own producer) remain valid on the results topic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, model_validator

from schemas.codec import CodecError, validate
from schemas.models import EpochMs, MetricValue, Record

BATCH_KIND = "result_batch"
Column = Sequence[Any]  # one value per client: a number, another MetricValue, or None (missing)


class ResultBatch(BaseModel):
    """The columns of a result batch; every column has one value per client."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    v: Literal[1] = 1
    kind: Literal["result_batch"]
    collected_at_ms: EpochMs
    run_id: list[str]
    client_id: list[str]
    requested_at_ms: list[int]
    attempt: list[int]
    metric_names: list[str]
    metrics: list[list[MetricValue | None]]
    computed_names: list[str]
    computed: list[list[float | None]]

    @model_validator(mode="after")
    def _columns_line_up(self) -> ResultBatch:
        n = len(self.client_id)
        if not n:
            raise ValueError("a result batch holds at least one client")
        for name in ("run_id", "requested_at_ms", "attempt"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} values for {n} clients")
        for names, columns, what in (
            (self.metric_names, self.metrics, "metric"),
            (self.computed_names, self.computed, "computed"),
        ):
            if len(names) != len(columns) or len(set(names)) != len(names):
                raise ValueError(f"{what} names must be distinct, one per column")
            if any(len(column) != n for column in columns):
                raise ValueError(f"every {what} column must have {n} values")
        return self


def is_batch(obj: object) -> bool:
    """Whether a decoded record is a result batch (else it should be a single ``ClientResult``)."""
    return type(obj) is dict and obj.get("kind") == BATCH_KIND


def expand_batch(obj: Record) -> list[Record]:
    """The ``ClientResult``-shaped dict of every row, in order (each still to be validated on its own).

    Raises ``CodecError`` (``wrong_schema``) when the batch's columns do not line up. The rows hold the
    values as decoded (the model only checks them), so an integer stays an integer.
    """
    validate(ResultBatch, obj)
    metrics = list(zip(obj["metric_names"], obj["metrics"], strict=True))
    computed = list(zip(obj["computed_names"], obj["computed"], strict=True))
    rows: list[Record] = []
    for i, client_id in enumerate(obj["client_id"]):
        values = {name: column[i] for name, column in metrics if column[i] is not None}
        missing = [name for name, column in metrics if column[i] is None]
        rows.append(
            {
                "v": 1,
                "run_id": obj["run_id"][i],
                "client_id": client_id,
                "requested_at_ms": obj["requested_at_ms"][i],
                "attempt": obj["attempt"][i],
                "collected_at_ms": obj["collected_at_ms"],
                "status": "partial" if missing else "ok",
                "metrics": values,
                "missing": missing,
                "computed": {name: column[i] for name, column in computed if column[i] is not None},
            }
        )
    return rows


def encode_batch(
    requests: Sequence[Record],
    collected_at_ms: int,
    metrics: Mapping[str, Column],
    computed: Mapping[str, Column],
) -> bytes:
    """One result batch for ``requests`` (CollectionRequest dicts) and their value columns, in order."""
    if not requests:
        raise CodecError("wrong_schema", "a result batch holds at least one client")
    return orjson.dumps(
        {
            "v": 1,
            "kind": BATCH_KIND,
            "collected_at_ms": collected_at_ms,
            "run_id": [r["run_id"] for r in requests],
            "client_id": [r["client_id"] for r in requests],
            "requested_at_ms": [r["requested_at_ms"] for r in requests],
            "attempt": [r.get("attempt", 0) for r in requests],
            "metric_names": list(metrics),
            "metrics": list(metrics.values()),
            "computed_names": list(computed),
            "computed": list(computed.values()),
        }
    )


PER_CLIENT_COLUMNS = ("run_id", "client_id", "requested_at_ms", "attempt")


def slice_batch(obj: Record, start: int, end: int) -> bytes:
    """Rows ``[start, end)`` of a decoded result batch, encoded as a batch of their own."""
    part: Record = dict(obj)
    for name in PER_CLIENT_COLUMNS:
        part[name] = obj[name][start:end]
    part["metrics"] = [column[start:end] for column in obj["metrics"]]
    part["computed"] = [column[start:end] for column in obj["computed"]]
    return orjson.dumps(part)


def cut_batch(value: bytes, limit: int) -> tuple[list[tuple[int, bytes]], list[tuple[int, Record, bytes]]]:
    """A result batch cut by bytes: parts of at most ``limit`` bytes, each ``(clients, value)``, in row
    order, and the rows that do not fit even alone, each ``(position, its identity, its own batch)``.

    A batch that fits is returned as it is. Halving keeps the number of encodes to about
    ``2 * parts``; every row ends up in exactly one part or in the second list.
    """
    obj = orjson.loads(value)
    clients = len(obj["client_id"])
    if len(value) <= limit:
        return [(clients, value)], []
    parts: list[tuple[int, int, bytes]] = []
    too_big: list[tuple[int, Record, bytes]] = []
    pending = [(0, clients, value)]
    while pending:
        start, end, encoded = pending.pop()
        if len(encoded) <= limit:
            parts.append((start, end - start, encoded))
        elif end - start == 1:
            too_big.append((start, {name: obj[name][start] for name in PER_CLIENT_COLUMNS}, encoded))
        else:
            middle = (start + end) // 2
            pending.append((middle, end, slice_batch(obj, middle, end)))
            pending.append((start, middle, slice_batch(obj, start, middle)))
    parts.sort(key=lambda part: part[0])
    too_big.sort(key=lambda row: row[0])
    return [(count, encoded) for _, count, encoded in parts], too_big


__all__ = [
    "BATCH_KIND",
    "ResultBatch",
    "cut_batch",
    "encode_batch",
    "expand_batch",
    "is_batch",
    "slice_batch",
]
