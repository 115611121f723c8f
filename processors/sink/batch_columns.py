"""The sink's fast path for a result batch: its columns checked whole and turned into table columns.

``batch_columns`` checks every column of a result batch (``schemas.result_batch``) at once (types,
ranges, lengths: C-level passes over lists) and returns the batch's rows as ``client_results``
columns (``processors.sink.columns.ResultColumns``), formatting each client's metric and computed maps as
JSON text from the columns (one ``orjson.dumps`` per column, split and joined with the constant keys).
It returns None for a batch it does not vouch for (a missing value, an unusual type): the caller then
checks each row on its own through the ``ClientResult`` model (``processors.sink.result_rows``). Tests check
this path against the model.
"""

from __future__ import annotations

from itertools import repeat
from typing import Any

import orjson

from processors.sink.columns import ResultColumns, in_column_order
from schemas.ddl import result_version
from schemas.fast_checks import client_ids_valid, ints_within, run_ids_valid
from schemas.models import MAX_ATTEMPT, MAX_EPOCH_MS
from schemas.result_batch import ResultBatch

NO_MISSING: list[str] = []  # the ``missing`` value of every complete row: the driver only reads it
_BATCH_KEYS = frozenset(ResultBatch.model_fields)
_STRS = frozenset((str,))
_NUMBER_CHARS = b"0123456789.-+eE,"


def _columns_ok(names: Any, columns: Any, n: int) -> bool:
    """Distinct string names, one list of ``n`` values each (``_json_maps`` checks the values)."""
    return (
        type(names) is list
        and type(columns) is list
        and len(names) == len(columns)
        and _STRS.issuperset(map(type, names))
        and len(set(names)) == len(names)
        and all(type(c) is list and len(c) == n for c in columns)
    )


def _json_maps(names: list[str], columns: list[list[Any]], n: int) -> list[bytes] | None:
    """Each client's ``{name: value, ...}`` JSON text, formatted from whole columns; None unless every
    value is a number.

    A column's JSON holds only number characters when, and only when, every value is an int or a
    float (``null``, ``true``, strings, lists and objects all bring other characters), so one
    ``bytes.translate`` checks the whole column in C.
    """
    if not names:
        return [b"{}"] * n
    texts = [orjson.dumps(column)[1:-1] for column in columns]
    if any(text.translate(None, _NUMBER_CHARS) for text in texts):
        return None
    keys = [orjson.dumps(name) + b":" for name in names]
    constants = [b"{" + keys[0], *[b"," + key for key in keys[1:]], b"}"]
    pieces: list[Any] = [None] * (2 * len(names) + 1)
    pieces[0::2] = [repeat(c, n) for c in constants]
    pieces[1::2] = [text.split(b",") for text in texts]
    return list(map(b"".join, zip(*pieces, strict=True)))


def batch_columns(obj: dict[str, Any], run_ids: set[str]) -> ResultColumns | None:
    """The rows of a result batch as columns when the model surely accepts every row, else None.

    ``run_ids`` caches run ids already found valid. The lists returned may be the batch's own (the
    caller copies them into its windows).
    """
    if obj.keys() != _BATCH_KEYS or obj["v"] != 1 or type(obj["v"]) is not int:
        return None
    clients, run, collected = obj["client_id"], obj["run_id"], obj["collected_at_ms"]
    requested, attempts = obj["requested_at_ms"], obj["attempt"]
    n = len(clients) if type(clients) is list else 0
    if not (
        n
        and all(type(c) is list and len(c) == n for c in (run, requested, attempts))
        and type(collected) is int
        and 0 <= collected <= MAX_EPOCH_MS
        and client_ids_valid(clients)
        and run_ids_valid(run, run_ids)
        and ints_within(requested, MAX_EPOCH_MS)
        and ints_within(attempts, MAX_ATTEMPT)
        and _columns_ok(obj["metric_names"], obj["metrics"], n)
        and _columns_ok(obj["computed_names"], obj["computed"], n)
    ):
        return None
    metrics = _json_maps(obj["metric_names"], obj["metrics"], n)
    computed = _json_maps(obj["computed_names"], obj["computed"], n)
    if metrics is None or computed is None:
        return None
    seconds = [ms // 1000 for ms in requested]
    return list(
        in_column_order(
            {
                "run_id": run,
                "client_id": clients,
                "requested_at": seconds,
                "collected_at": [collected // 1000] * n,
                "attempt": attempts,
                "status": ["ok"] * n,
                "metrics": metrics,
                "missing": [NO_MISSING] * n,
                "computed": computed,
                "version": [result_version(a, True, collected) for a in attempts],  # all ok
            }
        )
    )
