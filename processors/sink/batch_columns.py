"""The sink's fast path for a result batch: its columns checked whole and turned into table columns.

``batch_columns`` checks every column of a result batch (``schemas.result_batch``) at once (types,
ranges, lengths: C-level passes over lists) and returns the batch's rows as ``client_results``
columns (``processors.sink.columns.ResultColumns``): every row's names are one list object shared by
all rows of every batch with those names (the driver writes a run of rows sharing it once,
``streams.clickhouse.driver_columns``), and its values are one ``FloatRows`` per batch and value
column (the batch's columns converted to one ``array('d')`` in C, row-major), held once per row: no
tuple per row, no text. It returns None for a batch it does not vouch for (a missing value, a metric
that is not a number, an unusual type): the caller then checks each row on its own through the
``ClientResult`` model (``processors.sink.result_rows``). Tests check this path against the model.
"""

from __future__ import annotations

from typing import Any

from processors.sink.columns import ResultColumns, in_column_order
from schemas.ddl import result_version
from schemas.fast_checks import client_ids_valid, ints_within, run_ids_valid
from schemas.models import MAX_ATTEMPT, MAX_EPOCH_MS
from schemas.result_batch import ResultBatch
from streams.clickhouse.driver_columns import FloatRows

NO_MISSING: list[str] = []  # the ``missing`` value of every complete row: the driver only reads it
_BATCH_KEYS = frozenset(ResultBatch.model_fields)
_STRS = frozenset((str,))
_NUMBERS = frozenset((int, float))


def _names_ok(names: Any, columns: Any) -> bool:
    """Distinct string names, one column each."""
    return (
        type(names) is list
        and type(columns) is list
        and len(names) == len(columns)
        and _STRS.issuperset(map(type, names))
        and len(set(names)) == len(names)
    )


def _values(columns: list[Any], n: int) -> FloatRows | None:
    """The rows of ``columns`` (lists of ``n`` numbers: an int or a float, no ``None``, no bool), or None."""
    if not all(type(c) is list and len(c) == n and _NUMBERS.issuperset(map(type, c)) for c in columns):
        return None
    return FloatRows.from_columns(columns, n)


_SHARED_NAMES: dict[tuple[str, ...], list[str]] = {}  # one list object per distinct list of names
_SHARED_NAMES_MAX = 4096


def shared_names(names: list[str]) -> list[str]:
    """The one list object that stands for ``names`` in every row holding them (never mutated)."""
    key = tuple(names)
    shared = _SHARED_NAMES.get(key)
    if shared is None:
        if len(_SHARED_NAMES) >= _SHARED_NAMES_MAX:
            _SHARED_NAMES.clear()
        shared = _SHARED_NAMES[key] = names
    return shared


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
        and _names_ok(obj["metric_names"], obj["metrics"])
        and _names_ok(obj["computed_names"], obj["computed"])
    ):
        return None
    metric_values = _values(obj["metrics"], n)
    computed_values = _values(obj["computed"], n) if metric_values is not None else None
    if computed_values is None:
        return None
    # a batch's rows nearly always share their request time and attempt: each distinct value is
    # converted once, and the column is a C-level lookup
    seconds = list(map({ms: ms // 1000 for ms in set(requested)}.__getitem__, requested))
    versions = {a: result_version(a, True, collected) for a in set(attempts)}  # every row is ok
    return list(
        in_column_order(
            {
                "run_id": run,
                "client_id": clients,
                "requested_at": seconds,
                "collected_at": [collected // 1000] * n,
                "attempt": attempts,
                "status": ["ok"] * n,
                "metric_names": [shared_names(obj["metric_names"])] * n,
                "metric_values": [metric_values] * n,
                "missing": [NO_MISSING] * n,
                "computed_names": [shared_names(obj["computed_names"])] * n,
                "computed_values": [computed_values] * n,
                "text_names": [NO_MISSING] * n,
                "text_values": [NO_MISSING] * n,
                "version": list(map(versions.__getitem__, attempts)),
            }
        )
    )
